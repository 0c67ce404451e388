import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { InferenceSession } from 'onnxruntime-node';
import { resolveModelConfig } from '../config/parse-model-config.js';
import type { ModelConfigFile } from '../config/model-config-schema.js';
import type { Handler, HandlerContext } from '../handler/types.js';
import type { Datatype } from '../manifest/datatypes.js';
import type { Manifest, Signature, TensorSpec } from '../manifest/manifest.js';
import { TENSOR_TYPE_TO_DATATYPE } from '../tensor/datatypes.js';
import {
  createContext,
  initializeHandler,
  loadModel,
  settleProvidersFor,
  type LoadedModel,
  type LoadOptions,
} from '../worker/load-model.js';
import type { LogSink } from '../runtime/logger.js';
import type { MetricSample } from '../runtime/metrics.js';
import { runBatch } from '../worker/run-batch.js';
import { ERROR_CATALOGUE, type KilnErrorCode } from '../errors/catalogue.js';
import type { FailurePhase } from '../errors/kiln-error.js';
import { renderBody, type WireRequest, type WireResult } from '../runtime/wire.js';
import { contentTypeFor } from '../runtime/content-type.js';

/** One input: raw bytes, a file to read, JSON, or a full request. */
export type RunInput =
  | Uint8Array
  | { file: string; contentType?: string }
  | { json: unknown }
  | { body: Uint8Array | string; contentType?: string; headers?: Record<string, string>; query?: Record<string, string> };

export interface RunOptions {
  /** For a handler object or class: the ONNX model it serves (its signature is read by ONNX Runtime). */
  modelPath?: string;
  /** For a handler object or class: model-config.yaml's contents, `handler:` section included. */
  config?: ModelConfigFile;
  modelName?: string;
  /** For a handler object or class: the folder extra files are read from (default: the model's folder). */
  modelDir?: string;
  /** Send each input in its own batch instead of all inputs in one. */
  oneByOne?: boolean;
  /** Send the inputs to the handler's explain() instead of handle(), as `POST /explanations/{m}` does. */
  explain?: boolean;
  /** Where the handler's log lines go (default: stderr). `kiln predict` prints them. */
  logSink?: LogSink;
  /**
   * For an archive: the folder to unpack it in (default: a temporary one, removed afterwards). The
   * caller then owns the folder, and can remove it on Ctrl-C.
   */
  unpackDir?: string;
}

/** What a client would receive for one input. */
export interface RunResult {
  ok: boolean;
  status: number;
  /** The parsed JSON answer, when the answer is JSON. */
  json?: unknown;
  /** The answer as text, when it is `text/*` (a handler that returned a string). */
  text?: string;
  bytes?: Uint8Array;
  contentType: string;
  headers: Record<string, string>;
  error?: { code: KilnErrorCode; message: string; phase: FailurePhase | undefined; stack: string | undefined };
}

export interface RunReport {
  results: RunResult[];
  /** Custom metric samples the handler recorded. */
  metrics: MetricSample[];
}

/**
 * Runs a handler through the same code path as a server worker (load, initialize, handle with
 * per-request results) without starting a server. `handlerOrArchive` is a handler object or class
 * (with `options.modelPath` when it uses ONNX), an unpacked archive folder, or a `.mar`/`.tar.gz`
 * (unpacked through @kiln/server).
 */
export async function runHandler(
  handlerOrArchive: string | Handler | (new () => Handler),
  inputs: readonly RunInput[],
  options: RunOptions = {},
): Promise<RunResult[]> {
  return (await runHandlerReport(handlerOrArchive, inputs, options)).results;
}

export async function runHandlerReport(
  handlerOrArchive: string | Handler | (new () => Handler),
  inputs: readonly RunInput[],
  options: RunOptions = {},
): Promise<RunReport> {
  const metrics: MetricSample[] = [];
  return withModel(handlerOrArchive, options, metrics, async (model) => {
    const wire = await Promise.all(inputs.map((input, i) => toWire(input, i)));
    if (options.explain === true) for (const w of wire) w.hook = 'explain';
    const batches = options.oneByOne ? wire.map((w) => [w]) : [wire];
    const results: RunResult[] = [];
    for (const batch of batches) results.push(...(await runBatch(model, batch)).map(fromWire));
    return { results, metrics };
  });
}

/**
 * Calls the handler's describe() as `GET /models/{m}?customized=true` does: its metadata as `json`,
 * or, for a handler without describe(), a failure with code KILN_ERR_NOT_IMPLEMENTED.
 */
export async function describeHandler(
  handlerOrArchive: string | Handler | (new () => Handler),
  options: RunOptions = {},
): Promise<RunResult> {
  return withModel(handlerOrArchive, options, [], async (model) => {
    const [result] = await runBatch(model, [
      { id: 'test-describe', body: new Uint8Array(), contentType: undefined, headers: {}, query: {}, hook: 'describe' },
    ]);
    return fromWire(result!);
  });
}

/** Loads the handler, runs `use` on it, then disposes it and removes what loading it left behind. */
async function withModel<T>(
  target: string | Handler | (new () => Handler),
  options: RunOptions,
  metrics: MetricSample[],
  use: (model: LoadedModel) => Promise<T>,
): Promise<T> {
  const cleanup: (() => Promise<void>)[] = [];
  try {
    const model = await load(target, options, metrics, cleanup);
    cleanup.push(async () => model.handler.dispose?.());
    return await use(model);
  } finally {
    for (const fn of cleanup.reverse()) await fn();
  }
}

async function load(
  target: string | Handler | (new () => Handler),
  options: RunOptions,
  metrics: MetricSample[],
  cleanup: (() => Promise<void>)[],
): Promise<LoadedModel> {
  const metricSink = (s: MetricSample) => metrics.push(s);
  const sinks = { metricSink, probeProviders: true, ...(options.logSink === undefined ? {} : { logSink: options.logSink }) };
  if (typeof target === 'string') {
    if ((await stat(target)).isDirectory()) return loadModel(target, sinks);
    let dir = options.unpackDir;
    if (dir === undefined) {
      const own = await mkdtemp(join(tmpdir(), 'kiln-run-'));
      cleanup.push(() => rm(own, { recursive: true, force: true }));
      dir = own;
    }
    const server = (await import('@kiln/server' as string)) as { extractArchive(path: string, dest: string): Promise<unknown> };
    await server.extractArchive(target, join(dir, 'model'));
    return loadModel(join(dir, 'model'), sinks);
  }
  const handler: Handler = typeof target === 'function' ? new target() : target;
  const context = await syntheticContext(options, sinks);
  await initializeHandler(handler, context);
  return { handler, context };
}

/** A context like the one an archive would give, for a handler tested on its own. */
async function syntheticContext(options: RunOptions, sinks: Pick<LoadOptions, 'metricSink' | 'logSink'>): Promise<HandlerContext> {
  const modelName = options.modelName ?? 'test-model';
  const config = await settleProvidersFor(modelName, resolveModelConfig(options.config ?? {}), sinks);
  const signature = options.modelPath === undefined ? undefined : await readSignature(options.modelPath);
  const manifest: Manifest = {
    createdOn: '01/01/2026 00:00:00',
    runtime: 'node',
    archiverVersion: 'test',
    sdkVersion: 'test',
    model: {
      modelName,
      modelVersion: '1',
      handler: 'test',
      ...(options.modelPath === undefined ? {} : { serializedFile: basename(options.modelPath) }),
    },
    ...(signature === undefined ? {} : { signature }),
    files: {},
  };
  const modelDir = options.modelDir ?? (options.modelPath === undefined ? process.cwd() : dirname(options.modelPath));
  return createContext(manifest, modelDir, config, sinks);
}

/** The model's signature as ONNX Runtime reports it (named dynamic dimensions become -1). */
async function readSignature(modelPath: string): Promise<Signature> {
  const session = await InferenceSession.create(modelPath);
  try {
    const spec = (m: InferenceSession.ValueMetadata): TensorSpec => {
      if (!m.isTensor) return { name: m.name, datatype: 'BYTES' };
      const datatype = (TENSOR_TYPE_TO_DATATYPE[m.type] ?? 'BYTES') as Datatype;
      return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === 'number' ? d : -1)) };
    };
    return { inputs: session.inputMetadata.map(spec), outputs: session.outputMetadata.map(spec) };
  } finally {
    await session.release();
  }
}

async function toWire(input: RunInput, i: number): Promise<WireRequest> {
  const base = { id: `test-${i}`, headers: {}, query: {} };
  if (input instanceof Uint8Array) return { ...base, body: input, contentType: 'application/octet-stream' };
  if ('file' in input) return { ...base, body: await readFile(input.file), contentType: input.contentType ?? contentTypeFor(input.file) };
  if ('json' in input) return { ...base, body: Buffer.from(JSON.stringify(input.json)), contentType: 'application/json' };
  const body = typeof input.body === 'string' ? Buffer.from(input.body) : input.body;
  return { ...base, body, contentType: input.contentType, headers: input.headers ?? {}, query: input.query ?? {} };
}

export function fromWire(result: WireResult): RunResult {
  if (!result.ok) {
    const { code, message, phase, stack } = result.error;
    return {
      ok: false,
      status: ERROR_CATALOGUE[code].status,
      contentType: 'application/json',
      headers: {},
      error: { code, message, phase, stack },
    };
  }
  const { status, headers } = result;
  const { contentType, data } = renderBody(result.body);
  if (typeof data === 'string') return { ok: true, status, headers, contentType, json: JSON.parse(data) };
  if (contentType.startsWith('text/'))
    return { ok: true, status, headers, contentType, text: Buffer.from(data).toString('utf8'), bytes: data };
  return { ok: true, status, headers, contentType, bytes: data };
}
