import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseModelConfig, resolveModelConfig, type Device, type ModelConfig } from '@kiln/handler-sdk';
import { extractArchive } from '../archive/extract-archive.js';
import { Batcher } from '../batching/batcher.js';
import type { ServerConfig } from '../config/server-config.js';
import { coreCount } from '../config/server-config.js';
import { WorkerPool } from '../pool/worker-pool.js';
import type { WorkerEvents } from '../pool/worker-process.js';
import { ModelEntry } from './model-entry.js';

/** Values that override the archive's model-config (from the management API). */
export interface ConfigOverrides {
  batchSize?: number;
  maxBatchDelayMs?: number;
  minWorkers?: number;
  responseTimeoutS?: number;
}

export interface LoadContext {
  workDir: string;
  server: ServerConfig;
  events: (model: string) => WorkerEvents;
}

/**
 * Unpacks an archive into a fresh staging folder (every entry checked before it is written, every
 * hash after), moves it into place with one rename, then starts its workers and its batcher.
 * A failure to unpack leaves nothing on disk; a failure to start leaves the entry `failed`.
 */
export async function loadVersion(archive: string, name: string | undefined, context: LoadContext, overrides: ConfigOverrides = {}): Promise<ModelEntry> {
  const tag = randomBytes(6).toString('hex');
  const staging = join(context.workDir, 'staging', tag);
  const report = await extractArchive(archive, staging);
  const manifest = report.manifest;
  const entry = new ModelEntry(name ?? manifest.model.modelName, manifest.model.modelVersion, archive);
  const modelDir = join(context.workDir, 'models', `${entry.name}-${tag}`);
  try {
    await mkdir(dirname(modelDir), { recursive: true });
    await rename(staging, modelDir);
    const configText = manifest.model.configFile === undefined ? '' : await readFile(join(modelDir, manifest.model.configFile), 'utf8');
    const file = parseModelConfig(configText, manifest.model.configFile);
    entry.manifest = manifest;
    entry.modelDir = modelDir;
    // The server's defaults fill in what the archive's model-config leaves out.
    entry.config = withOverrides(resolveModelConfig({ minWorkers: context.server.workers, jobQueueSize: context.server.jobQueueSize, ...file }), overrides);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    await rm(modelDir, { recursive: true, force: true });
    throw error;
  }
  return entry;
}

/** Starts the entry's workers and batcher; resolves when it is ready or has failed. */
export async function startVersion(entry: ModelEntry, context: LoadContext): Promise<void> {
  const config = entry.config!;
  const batcherRef: { current?: Batcher } = {};
  const pool = new WorkerPool({
    model: entry.name,
    version: entry.version,
    modelDir: entry.modelDir!,
    workers: config.minWorkers,
    responseTimeoutMs: config.responseTimeoutS * 1000,
    startupTimeoutMs: config.startupTimeoutS * 1000,
    intraOpNumThreads: config.intraOpNumThreads ?? Math.max(1, Math.floor(coreCount() / config.minWorkers)),
    device: deviceFor(config),
    events: context.events(entry.name),
    onFree: () => batcherRef.current?.pump(),
  });
  entry.pool = pool;
  entry.batcher = batcherRef.current = new Batcher(pool, {
    model: entry.name,
    batchSize: config.batchSize,
    maxBatchDelayMs: config.maxBatchDelayMs,
    jobQueueSize: config.jobQueueSize,
    clientTimeoutMs: config.clientTimeoutMs,
  });
  const error = await pool.start();
  entry.loadError = error?.message;
  entry.loading = false;
}

function withOverrides(config: ModelConfig, overrides: ConfigOverrides): ModelConfig {
  return Object.freeze({
    ...config,
    ...(overrides.batchSize === undefined ? {} : { batchSize: overrides.batchSize }),
    ...(overrides.maxBatchDelayMs === undefined ? {} : { maxBatchDelayMs: overrides.maxBatchDelayMs }),
    ...(overrides.minWorkers === undefined ? {} : { minWorkers: overrides.minWorkers, maxWorkers: Math.max(overrides.minWorkers, config.maxWorkers) }),
    ...(overrides.responseTimeoutS === undefined ? {} : { responseTimeoutS: overrides.responseTimeoutS }),
  });
}

/** GPU workers take the config's deviceIds round-robin (GPU 0 when none are listed). */
function deviceFor(config: ModelConfig): (index: number) => Device {
  if (config.deviceType !== 'gpu') return () => ({ type: 'cpu', id: undefined });
  const ids = config.deviceIds.length > 0 ? config.deviceIds : [0];
  return (index) => ({ type: 'gpu', id: ids[index % ids.length]! });
}

/** Stops a version: no new requests, answer what is queued, then stop its workers. */
export async function stopVersion(entry: ModelEntry, drainMs: number): Promise<void> {
  entry.draining = true;
  if (entry.batcher !== undefined) {
    const drained = entry.batcher.drained();
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, drainMs).unref());
    await Promise.race([drained, timeout]);
  }
  await entry.pool?.stop();
  if (entry.modelDir !== undefined) await rm(entry.modelDir, { recursive: true, force: true });
}
