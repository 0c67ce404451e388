import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import { parseAddress, type ServerConfig } from './config/server-config.js';
import { serverError } from './errors.js';
import { createApp } from './http/create-app.js';
import { inferenceApi, type InferenceDeps } from './http/inference-api.js';
import { v1Api } from './kserve/v1-api.js';
import { v2Api } from './kserve/v2-api.js';
import { managementApi } from './http/management-api.js';
import { metricsApi, ServerMetrics } from './http/metrics-api.js';
import type { ModelEntry } from './registry/model-entry.js';
import { ModelRegistry } from './registry/registry.js';
import { loadVersion, startVersion, stopVersion, type LoadContext } from './registry/load-version.js';

export interface ServerLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface KilnServer {
  /** The addresses actually bound (port 0 resolves to a real port). */
  addresses: { inference: string; management: string; metrics: string };
  registry: ModelRegistry;
  /** Resolves when every model given at start has loaded or failed. */
  loaded: Promise<ModelEntry[]>;
  /** Stops taking connections, answers what was accepted, stops the workers. Bounded by drainTimeout. */
  close(): Promise<void>;
}

const consoleLog: ServerLog = {
  info: (m) => process.stdout.write(`${m}\n`),
  warn: (m) => process.stderr.write(`${m}\n`),
  error: (m) => process.stderr.write(`${m}\n`),
};

/** Starts the inference, management and metrics APIs, then loads the configured models. */
export async function startServer(config: ServerConfig, log: ServerLog = consoleLog): Promise<KilnServer> {
  const workDir = await mkdtemp(join(tmpdir(), 'kiln-server-'));
  const registry = new ModelRegistry();
  const metrics = new ServerMetrics();
  let closing = false;
  const context: LoadContext = {
    workDir,
    server: config,
    events: (model) => ({
      onLog: (level, message, fields) => {
        const worker = typeof fields.worker === 'string' ? ` ${fields.worker}` : '';
        (level === 'error' ? log.error : level === 'warn' ? log.warn : log.info)(`[${model}${worker}] ${message}`);
      },
      onMetric: (sample) => metrics.recordSample(sample as never),
    }),
  };

  const appOptions = {
    maxRequestSizeBytes: config.maxRequestSizeBytes,
    requestTimeoutMs: config.requestTimeoutMs,
    headersTimeoutMs: config.headersTimeoutMs,
    closing: () => closing,
  };
  const inference = createApp(appOptions);
  await inference.register(multipart, { limits: { fileSize: config.maxRequestSizeBytes, files: 16, fields: 64 } });
  const inferenceDeps: InferenceDeps = {
    registry,
    closing: () => closing,
    onResult: (entry, result, requestId) => {
      metrics.recordResult(entry, result);
      // A server-side failure is logged with the handler's stack (mapped to its .ts source).
      if (!result.ok && result.error.status >= 500) {
        const { code, message, stack } = result.error;
        const trace = stack?.split('\n').slice(1).join('\n');
        log.error(`[${entry.name}] request ${requestId} failed: ${code}: ${message}${trace ? `\n${trace}` : ''}`);
      }
    },
  };
  inferenceApi(inference, inferenceDeps);
  v2Api(inference, inferenceDeps);
  v1Api(inference, inferenceDeps);
  const management = createApp(appOptions);
  managementApi(management, registry);
  const metricsApp = createApp(appOptions);
  metricsApi(metricsApp, registry, metrics);

  const apps: [string, FastifyInstance, string][] = [
    ['inference', inference, config.inferenceAddress],
    ['management', management, config.managementAddress],
    ['metrics', metricsApp, config.metricsAddress],
  ];
  const addresses = { inference: '', management: '', metrics: '' };
  try {
    for (const [name, app, address] of apps) {
      const { host, port } = parseAddress(address);
      await app.listen({ host, port });
      const bound = app.server.address();
      const actual = typeof bound === 'object' && bound !== null ? `http://${host.includes(':') ? `[${host}]` : host}:${bound.port}` : address;
      addresses[name as keyof typeof addresses] = actual;
      log.info(`${name} API listening on ${actual}`);
    }
  } catch (error) {
    await Promise.all(apps.map(([, app]) => app.close()));
    await rm(workDir, { recursive: true, force: true });
    throw error;
  }

  const loaded = Promise.all(modelSources(config).map(async ({ name, path }) => {
    let entry: ModelEntry;
    try {
      entry = await loadVersion(path, name, context);
      registry.add(entry);
    } catch (error) {
      const code = (error as { code?: string }).code;
      log.error(`model ${name ?? basename(path)} failed to load from ${path}: ${code?.startsWith('KILN_ERR_') ? `${code} ` : ''}${(error as Error).message}`);
      return undefined;
    }
    await startVersion(entry, context);
    log.info(readyLine(entry));
    return entry;
  })).then((entries) => entries.filter((e): e is ModelEntry => e !== undefined));

  return {
    addresses,
    registry,
    loaded,
    async close() {
      if (closing) return;
      closing = true;
      log.info('shutting down: answering accepted requests, then stopping workers');
      const deadline = new Promise<void>((r) => setTimeout(r, config.drainTimeoutMs).unref());
      // Stop listening; requests already accepted finish through the batchers, and their responses
      // carry `Connection: close` so keep-alive clients let go.
      const closed = Promise.all(apps.map(([, app]) => app.close()));
      await Promise.race([Promise.all(registry.all().map((entry) => entry.batcher?.drained())), deadline]);
      await new Promise((r) => setImmediate(r)); // let the last responses be written
      for (const [, app] of apps) app.server.closeAllConnections();
      await closed;
      await Promise.all(registry.all().map((entry) => stopVersion(entry, config.drainTimeoutMs)));
      await rm(workDir, { recursive: true, force: true });
      log.info('stopped');
    },
  };
}

/** One line per model when it is ready (or failed): what serves it and how it batches. */
export function readyLine(entry: ModelEntry): string {
  const c = entry.config!;
  if (entry.state !== 'ready') return `model ${entry.name} ${entry.version} FAILED: ${entry.reason}`;
  const workers = entry.pool?.readyCount ?? 0;
  return `model ${entry.name} ${entry.version} ready: ${workers} worker${workers === 1 ? '' : 's'}, batchSize ${c.batchSize}, maxBatchDelay ${c.maxBatchDelayMs} ms, jobQueueSize ${c.jobQueueSize}`;
}

/** `name=path`, `path` or `all` (every archive in the model store). Relative paths look in the model store first. */
export function modelSources(config: ServerConfig): { name: string | undefined; path: string }[] {
  const sources: { name: string | undefined; path: string }[] = [];
  for (const spec of config.models) {
    if (spec === 'all') {
      if (config.modelStore === undefined) throw serverError('KILN_ERR_SERVER_CONFIG_INVALID', '--models all needs --model-store, the folder to load every archive from');
      for (const file of readdirSync(config.modelStore).sort()) {
        const path = join(config.modelStore, file);
        const isArchive = /\.(mar|tar\.gz|tgz)$/.test(file) || (statSync(path).isDirectory() && existsSync(join(path, 'MAR-INF/MANIFEST.json')));
        if (isArchive) sources.push({ name: undefined, path });
      }
      continue;
    }
    const at = spec.indexOf('=');
    const name = at === -1 ? undefined : spec.slice(0, at);
    const location = at === -1 ? spec : spec.slice(at + 1);
    const inStore = config.modelStore !== undefined && !isAbsolute(location) ? join(config.modelStore, location) : undefined;
    sources.push({ name, path: inStore !== undefined && existsSync(inStore) ? inStore : resolve(location) });
  }
  return sources;
}
