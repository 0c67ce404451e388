import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { checkModelName, parseModelConfig, resolveModelConfig, type LogLevel, type ModelConfig } from '@kiln/handler-sdk/runtime';
import { extractArchive } from '../archive/extract-archive.js';
import type { ServerConfig } from '../config/server-config.js';
import { PoolWorker, type WorkerEvents } from '../pool/pool-worker.js';
import type { ServerMetrics } from '../observability/server-metrics.js';
import type { Prestarted } from '../pool/worker-pool.js';
import type { DevicePlanner } from './devices.js';
import { ModelVersion } from './model-version.js';

/** Values that override the archive's model-config (from the management API). */
export interface ConfigOverrides {
  batchSize?: number;
  maxBatchDelayMs?: number;
  minWorkers?: number;
  maxWorkers?: number;
  responseTimeoutS?: number;
  startupTimeoutS?: number;
}

export interface LoadContext {
  workDir: string;
  /** Aborted when the server stops: an archive still unpacking stops there, and nothing is kept. */
  signal?: AbortSignal;
  server: ServerConfig;
  events: (model: string) => WorkerEvents;
  /** The server's --log-level, for the handlers' context.logger. */
  logLevel?: LogLevel | undefined;
  /** Each registered version's series are made here (loaded while the first workers boot). */
  metrics?: Promise<ServerMetrics> | undefined;
  /** Chooses each version's providers and GPUs (devices.ts); without it, the config's own. */
  devices?: DevicePlanner | undefined;
}

/**
 * Unpacks an archive into a fresh staging folder (every entry checked before it is written, every
 * hash as it streams), moves it into place with one rename, and returns its version, not started.
 * Workers of the server's default kind are started at once, while the archive is still being
 * unpacked and verified: starting a worker (a thread or process, loading ONNX Runtime) takes longer
 * than unpacking a small archive. The version adopts them if its config agrees, else stops them.
 * A failure to unpack leaves nothing on disk and no worker running.
 */
export async function loadVersion(
  archive: string,
  name: string | undefined,
  context: LoadContext,
  overrides: ConfigOverrides = {},
): Promise<{ version: ModelVersion; prestarted: Prestarted }> {
  // The name becomes a folder under the work folder: checked before anything is written or started.
  if (name !== undefined) checkModelName(name, 'the model name');
  const label = name ?? basename(archive);
  const prestarted: Prestarted = {
    isolation: context.server.isolation,
    workers: Array.from(
      { length: overrides.minWorkers ?? context.server.workers },
      (_, i) =>
        new PoolWorker({
          id: `${label}-early-w${i}`,
          isolation: context.server.isolation,
          heapLimitMb: undefined,
          events: context.events(label),
        }),
    ),
  };
  const tag = randomBytes(6).toString('hex');
  const staging = join(context.workDir, 'staging', tag);
  let modelDir: string | undefined;
  try {
    const { manifest } = await extractArchive(archive, staging, undefined, context.signal);
    const modelName = name ?? manifest.model.modelName;
    modelDir = join(context.workDir, 'models', `${modelName}-${tag}`);
    await mkdir(dirname(modelDir), { recursive: true });
    await rename(staging, modelDir);
    const configText = manifest.model.configFile === undefined ? '' : await readFile(join(modelDir, manifest.model.configFile), 'utf8');
    const file = parseModelConfig(configText, manifest.model.configFile);
    // The server's defaults fill in what the archive's model-config leaves out.
    const config = withOverrides(
      resolveModelConfig({ minWorkers: context.server.workers, jobQueueSize: context.server.jobQueueSize, ...file }),
      overrides,
    );
    // The providers that load on this machine, and the GPUs: a model with fallback: false whose
    // GPU providers do not load fails here, before any worker is asked to load it.
    const plan = await context.devices?.plan(modelName, config);
    const version = new ModelVersion({
      name: modelName,
      version: manifest.model.modelVersion,
      archive,
      manifest,
      config: plan?.config ?? config,
      ...(plan === undefined ? {} : { device: plan.device, requested: plan.requested }),
      modelDir,
      isolation: config.isolation ?? context.server.isolation,
      events: context.events(modelName),
      logLevel: context.logLevel,
    });
    return { version, prestarted };
  } catch (error) {
    await Promise.all(prestarted.workers.map((w) => w.stop(0)));
    await rm(staging, { recursive: true, force: true });
    if (modelDir !== undefined) await rm(modelDir, { recursive: true, force: true });
    throw error;
  }
}

/** minWorkers and maxWorkers as overridden: maxWorkers is raised to minWorkers, and to 1. */
function workerBounds(config: ModelConfig, overrides: ConfigOverrides): { minWorkers: number; maxWorkers: number } {
  const minWorkers = overrides.minWorkers ?? config.minWorkers;
  return { minWorkers, maxWorkers: Math.max(1, minWorkers, overrides.maxWorkers ?? config.maxWorkers) };
}

function withOverrides(config: ModelConfig, overrides: ConfigOverrides): ModelConfig {
  return Object.freeze({
    ...config,
    ...(overrides.batchSize === undefined ? {} : { batchSize: overrides.batchSize }),
    ...(overrides.maxBatchDelayMs === undefined ? {} : { maxBatchDelayMs: overrides.maxBatchDelayMs }),
    ...(overrides.minWorkers === undefined && overrides.maxWorkers === undefined ? {} : workerBounds(config, overrides)),
    ...(overrides.responseTimeoutS === undefined ? {} : { responseTimeoutS: overrides.responseTimeoutS }),
    ...(overrides.startupTimeoutS === undefined ? {} : { startupTimeoutS: overrides.startupTimeoutS }),
  });
}
