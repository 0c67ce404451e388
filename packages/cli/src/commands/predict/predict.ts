import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { LogSink } from '@kiln/handler-sdk/runtime';
import { contentTypeFor, runHandlerReport, type RunResult } from '@kiln/handler-sdk/testing';
import { integrityError, verifyArchive } from '@kiln/server';
import { onInterrupt } from '../../interrupt.js';
import { statOrThrow } from '../../util/files.js';

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
  result: RunResult;
}

/**
 * Runs input files through an archive with the worker's own code path (runHandlerReport: unpack
 * and verify, load and initialize, then runBatch), either all inputs in one batch or one request
 * each. An unpacked archive folder is verified against its manifest first.
 */
export async function predict(options: PredictOptions): Promise<Prediction[]> {
  const archive = resolve(options.cwd, options.archive);
  const inputs = options.inputs.map((input) => {
    const file = resolve(options.cwd, input);
    statOrThrow(file, 'input', options.cwd);
    return { file, contentType: options.contentType ?? contentTypeFor(file) };
  });
  if ((await stat(archive).catch(() => undefined))?.isDirectory()) {
    const report = await verifyArchive(archive);
    if (!report.ok) throw integrityError(report);
  }
  // Unpacked here rather than in runHandlerReport's own folder, so that Ctrl-C can remove it.
  const scratch = await mkdtemp(join(tmpdir(), 'kiln-predict-'));
  const disarm = onInterrupt(() => void rm(scratch, { recursive: true, force: true }));
  try {
    const { results } = await runHandlerReport(archive, inputs, {
      oneByOne: options.batch !== true,
      unpackDir: scratch,
      ...(options.logSink === undefined ? {} : { logSink: options.logSink }),
    });
    return results.map((result, i) => ({ input: options.inputs[i]!, result }));
  } finally {
    await rm(scratch, { recursive: true, force: true });
    disarm();
  }
}
