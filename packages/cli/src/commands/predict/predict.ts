import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type LogSink, type WireRequest, type WireResult } from '@kiln/handler-sdk/runtime';
import { loadModel, runBatch } from '@kiln/handler-sdk/worker';
import { contentTypeFor } from '@kiln/handler-sdk/testing';
import { extractArchive, integrityError, verifyArchive } from '@kiln/server';
import { onInterrupt } from '../../interrupt.js';
import { statOrThrow } from '../archive/collect-inputs.js';

export interface PredictOptions {
  archive: string;
  inputs: string[];
  batch?: boolean;
  contentType?: string;
  cwd: string;
  logSink?: LogSink;
}

export interface Prediction {
  input: string;
  result: WireResult;
}

/**
 * Runs input files through an archive with the worker's own code path: unpack and verify, load
 * (import, initialize), then runBatch, either all inputs in one batch or one request each.
 */
export async function predict(options: PredictOptions): Promise<Prediction[]> {
  const archive = resolve(options.cwd, options.archive);
  const scratch = await mkdtemp(join(tmpdir(), 'kiln-predict-'));
  const disarm = onInterrupt(() => void rm(scratch, { recursive: true, force: true }));
  try {
    let modelDir = join(scratch, 'model');
    if ((await stat(archive).catch(() => undefined))?.isDirectory()) {
      const report = await verifyArchive(archive);
      if (!report.ok) throw integrityError(report);
      modelDir = archive;
    } else {
      await extractArchive(archive, modelDir);
    }
    const requests = await Promise.all(options.inputs.map((input, i) => toRequest(input, i, options)));
    const model = await loadModel(modelDir, options.logSink === undefined ? {} : { logSink: options.logSink });
    try {
      const batches = options.batch ? [requests] : requests.map((r) => [r]);
      const results: WireResult[] = [];
      for (const batch of batches) results.push(...(await runBatch(model, batch)));
      return results.map((result, i) => ({ input: options.inputs[i]!, result }));
    } finally {
      await model.handler.dispose?.();
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
    disarm();
  }
}

async function toRequest(input: string, index: number, options: PredictOptions): Promise<WireRequest> {
  const file = resolve(options.cwd, input);
  statOrThrow(file, 'input', options.cwd);
  return {
    id: `predict-${index}`,
    body: await readFile(file),
    contentType: options.contentType ?? contentTypeFor(file),
    headers: {},
    query: {},
  };
}
