import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isBuiltinHandler } from '../builtin-handlers.js';
import { createBuiltinHandler } from '../builtin/registry.js';
import { parseModelConfig, resolveModelConfig } from '../config/parse-model-config.js';
import { sdkError } from '../errors/codes.js';
import { isKilnError } from '../errors/kiln-error.js';
import type { ModelConfig } from '../config/model-config-schema.js';
import type { Device, Handler, HandlerContext } from '../handler/types.js';
import type { Manifest } from '../manifest/manifest.js';
import { MANIFEST_PATH } from '../manifest/manifest.js';
import { parseManifest } from '../manifest/validate-manifest.js';
import { settleProviders } from '../providers/choose.js';
import { registerHandlerExternals } from './externals.js';
import { createLogger, type LogLevel, type LogSink } from '../runtime/logger.js';
import { createMetrics, type MetricSink } from '../runtime/metrics.js';

export interface LoadOptions {
  /** The device this worker serves on; the server assigns GPU ids. Default: from the config. */
  device?: Device;
  /** Threads for ONNX Runtime; the server passes cores ÷ workers. Default: config, else all cores. */
  intraOpNumThreads?: number;
  logSink?: LogSink;
  /** The least severe level `context.logger` sends on (the server's --log-level); info unless told. */
  logLevel?: LogLevel;
  metricSink?: MetricSink;
  /**
   * The manifest and resolved config, when the caller has read and checked them already (the
   * server has): the worker then neither reads nor validates them again.
   */
  manifest?: Manifest;
  config?: ModelConfig;
  /**
   * Keep only the config's execution providers that load on this machine, found out in a child
   * process, with one warning for those dropped (settleProviders). runHandler and `kiln predict` ask
   * for this; the server has decided already, once per model.
   */
  probeProviders?: boolean;
}

export interface LoadedModel {
  handler: Handler;
  context: HandlerContext;
}

/**
 * Loads an unpacked archive exactly as a server worker does: reads and validates the manifest and
 * config, builds the context, imports the handler (a built-in, or the bundled `handler.mjs` with
 * its externals resolved to the server's copies) and calls its initialize().
 */
export async function loadModel(modelDir: string, options: LoadOptions = {}): Promise<LoadedModel> {
  const manifest = options.manifest ?? parseManifest(await readFile(join(modelDir, MANIFEST_PATH)), `${modelDir}/${MANIFEST_PATH}`);
  const { configFile } = manifest.model;
  let config =
    options.config ??
    resolveModelConfig(parseModelConfig(configFile === undefined ? '' : await readFile(join(modelDir, configFile), 'utf8'), configFile));
  if (options.probeProviders === true) config = await settleProvidersFor(manifest.model.modelName, config, options);
  const context = createContext(manifest, modelDir, config, options);
  const handler = await importHandler(manifest.model.handler, modelDir);
  await initializeHandler(handler, context);
  return { handler, context };
}

/** settleProviders, with its warning on the model's log, as the handler's own lines go. */
export function settleProvidersFor(model: string, config: ModelConfig, options: Pick<LoadOptions, 'logSink'>): Promise<ModelConfig> {
  const logger = createLogger(model, options.logSink);
  return settleProviders(model, config, (message) => logger.warn(message));
}

/** The context a worker gives its handler; runHandler builds the same one for tests. */
export function createContext(manifest: Manifest, modelDir: string, config: ModelConfig, options: LoadOptions = {}): HandlerContext {
  const { modelName, modelVersion } = manifest.model;
  const device: Device = options.device ?? {
    type: config.deviceType,
    id: config.deviceType === 'gpu' ? (config.deviceIds[0] ?? 0) : undefined,
  };
  return Object.freeze({
    modelName,
    modelVersion,
    modelDir,
    manifest,
    signature: manifest.signature,
    config,
    device,
    batchSize: config.batchSize,
    executionProviders:
      device.type === 'cpu' ? config.executionProviders.filter((p) => p === 'cpu' || p === 'webgpu') : config.executionProviders,
    intraOpNumThreads: options.intraOpNumThreads ?? config.intraOpNumThreads ?? availableParallelism(),
    logger: createLogger(modelName, options.logSink, options.logLevel),
    metrics: createMetrics(modelName, modelVersion, options.metricSink ?? (() => {})),
    timings: { preprocess: 0, inference: 0, postprocess: 0 },
  });
}

/** Calls initialize(), turning any failure into KILN_ERR_HANDLER_LOAD with the handler's stack. */
export async function initializeHandler(handler: Handler, context: HandlerContext): Promise<void> {
  try {
    await handler.initialize?.(context);
  } catch (error) {
    throw loadError(
      `model "${context.modelName}" version ${context.modelVersion}: initialize() failed: ${(error as Error)?.message ?? String(error)}`,
      error,
    );
  }
}

async function importHandler(entry: string, modelDir: string): Promise<Handler> {
  if (isBuiltinHandler(entry)) return createBuiltinHandler(entry);
  const [file, exportName] = entry.split(':') as [string, string | undefined];
  registerHandlerExternals();
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(join(modelDir, file)).href)) as Record<string, unknown>;
  } catch (error) {
    throw loadError(`the handler module ${file} failed to load: ${(error as Error)?.message ?? String(error)}`, error);
  }
  const name = exportName ?? 'default';
  const value = module[name];
  const handler = toHandler(value);
  if (handler === undefined) {
    const exports = Object.keys(module).join(', ') || 'nothing';
    throw loadError(
      `export "${name}" of ${file} is not a handler (a class or object with a handle() method, or a function); the module exports: ${exports}`,
    );
  }
  return handler;
}

/** A class is instantiated, an object with handle() used as is, a bare function used as handle. */
function toHandler(value: unknown): Handler | undefined {
  if (typeof value === 'function') {
    const proto = (value as { prototype?: { handle?: unknown } }).prototype;
    if (proto !== undefined && typeof proto.handle === 'function') return new (value as new () => Handler)();
    return { handle: value as Handler['handle'] };
  }
  if (value !== null && typeof value === 'object' && typeof (value as Handler).handle === 'function') return value as Handler;
  return undefined;
}

function loadError(message: string, cause?: unknown) {
  if (isKilnError(cause) && cause.code !== 'KILN_ERR_HANDLER_FAILED') {
    const err = sdkError('KILN_ERR_HANDLER_LOAD', message, { cause, details: { cause: cause.code } });
    err.stack = `${err.name}: ${message}\n${cause.stack?.split('\n').slice(1).join('\n') ?? ''}`;
    return err;
  }
  const err = sdkError('KILN_ERR_HANDLER_LOAD', message, { cause });
  if (cause instanceof Error && cause.stack !== undefined)
    err.stack = `${err.name}: ${message}\n${cause.stack.split('\n').slice(1).join('\n')}`;
  return err;
}
