import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { KilnError } from '@kiln/handler-sdk/errors';
import { checkModelName } from '@kiln/handler-sdk/runtime';
import type { ApiName, ServerConfig } from './config/server-config.js';
import { serverError } from './errors.js';
import { claimWorkDir, removeStaleWorkDirs, useTmpdir } from './work-dir.js';
import type { InferenceDeps } from './http/inference-api.js';
import type { GrpcApi } from './grpc/grpc-api.js';
import type { TorchServeGrpcApis } from './grpc/torchserve-grpc.js';
import type { ServerMetrics } from './observability/server-metrics.js';
import { residentBytes } from './pool/resident-memory.js';
import { serverDevices } from './registry/devices.js';
import type { LoadContext } from './registry/load-version.js';
import type { ModelVersion } from './registry/model-version.js';
import { ModelService } from './registry/model-service.js';
import { ModelRegistry } from './registry/registry.js';
import { SnapshotFile, restorePlan } from './registry/snapshot.js';

import { createLogs, plainLogs, type LogLevelName, type Logs, type ServerLog } from './observability/logs.js';

export type { ServerLog };

export interface KilnServer {
  /** The addresses actually bound (port 0 resolves to a real port). */
  addresses: Record<ApiName, string>;
  /** The gRPC API's `host:port` as bound; undefined when it is off. */
  grpcAddress: string | undefined;
  /** TorchServe's gRPC inference and management APIs' `host:port`; undefined when off. */
  tsGrpcInferenceAddress: string | undefined;
  tsGrpcManagementAddress: string | undefined;
  registry: ModelRegistry;
  /** Resolves when every model given at start has loaded or failed. */
  loaded: Promise<ModelVersion[]>;
  /** Stops taking connections, answers what was accepted, stops the workers. Bounded by drainTimeout. */
  close(): Promise<void>;
}

/**
 * How long the APIs wait for the archives to unpack before they are built anyway. Loading fastify
 * holds this thread for a few hundred milliseconds, during which unpacking would stall; archives
 * that unpack sooner hand their workers the model first. Larger ones do not keep /ping and the
 * management API away for longer than this.
 */
const UNPACK_HEAD_START_MS = 1_500;
/**
 * The management and metrics APIs are built after the inference API listens, once the models
 * loading at startup are ready and have answered a first prediction, or this long after they are
 * ready, or OTHER_APIS_WAIT_MS after the inference API listens. Building them holds this thread
 * for about 150 ms (fastify compiles their route schemas), and a first request should not wait
 * behind that.
 */
const FIRST_ANSWER_WAIT_MS = 300;
const OTHER_APIS_WAIT_MS = 2_000;

/**
 * Starts loading the configured models, and the inference, management and metrics APIs meanwhile.
 * When `signal` aborts before the server is up (SIGTERM during start-up), everything started so far
 * is stopped, the work folder is removed, and the promise rejects with KILN_ERR_SHUTTING_DOWN.
 */
export async function startServer(config: ServerConfig, logging?: Logs | ServerLog, signal?: AbortSignal): Promise<KilnServer> {
  const logs =
    logging === undefined
      ? createLogs({ format: config.logFormat, level: config.logLevel, accessLog: config.accessLog, logDir: config.logDir })
      : 'server' in logging
        ? logging
        : plainLogs(logging);
  const log = logs.server;
  for (const warning of config.warnings) log.warn(warning);
  if (config.token !== undefined) {
    const open =
      config.healthAuth || !config.authApis.includes('inference')
        ? ''
        : '; /ping, /v2/health/live and /v2/health/ready answer without it (--health-auth off)';
    log.info(
      `auth: the token from ${config.tokenSource} guards the ${config.authApis.join(', ')} API${config.authApis.length === 1 ? '' : 's'}${open}`,
    );
  }
  const sources = modelSources(config); // checked before anything listens: a bad --models stops here
  const workDir = await mkdtemp(join(tmpdir(), 'kiln-server-'));
  // Whose folder this is, so that a later server can tell it was left by one that was killed.
  await claimWorkDir(workDir);
  const restoreTmpdir = useTmpdir(join(workDir, 'tmp'));
  const snapshot = config.snapshot ? new SnapshotFile(config.stateDir, (message) => log.warn(message)) : undefined;
  const plan = restorePlan(snapshot?.read(), sources);
  if (plan.api.length > 0 || plan.startup.some((o) => o !== undefined)) {
    log.info(`restoring the management API's changes from ${snapshot!.path} (--no-snapshot to start without them)`);
  }
  const startup = { pending: sources.length + plan.api.length, failed: [] as string[] };
  const registry = new ModelRegistry();
  // prom-client is imported only once the models have started loading: it takes about 30 ms, and
  // the workers boot meanwhile. A version registers only once the metrics exist (model-service.ts).
  let metricsNow: ServerMetrics | undefined;
  const metricsReady = import('./observability/server-metrics.js').then(({ ServerMetrics }) => {
    metricsNow = new ServerMetrics({
      latencyBuckets: config.latencyBuckets,
      batchSizeBuckets: config.batchSizeBuckets,
      torchserveMetrics: config.torchserveMetrics,
      onRefused: (message) => log.warn(message),
    });
    metricsNow.watch(() => registry.all().map((version) => version.view(residentBytes)));
    return metricsNow;
  });
  let closing = false;
  const devices = serverDevices(config, log);
  const context: LoadContext = {
    workDir,
    server: config,
    metrics: metricsReady,
    devices: devices.planner,
    logLevel: logs.level,
    events: (model) => ({
      // The model's log names the model already (as registered; the handler's `model` is the manifest's).
      onLog: (level, message, { model: _named, ...fields }) => logs.model(model).write(asLevel(level), message, fields),
      onMetric: (sample) => metricsNow?.recordSample(sample), // a handler records only once loaded, long after
    }),
  };
  const service = new ModelService(registry, config, context, snapshot);
  /** Stops every model, loaded or still loading, and removes the work folder. */
  const stopModels = async () => {
    await service.close();
    restoreTmpdir();
    await rm(workDir, { recursive: true, force: true });
  };
  /** Start-up was cut short by `signal`: undo it, then throw. */
  const abandon = async (): Promise<never> => {
    closing = true;
    log.info('stopping during start-up: ending the workers and removing unpacked models');
    await stopModels();
    log.info('stopped');
    throw serverError('KILN_ERR_SHUTTING_DOWN', 'the server was stopped while it started');
  };
  const aborted = new Promise<void>((resolve) => {
    if (signal?.aborted) resolve();
    signal?.addEventListener('abort', () => resolve(), { once: true });
  });

  /** Errors from results, logged with their model when they came back: not logged twice. */
  const logged = new WeakSet<Error>();
  let answered = () => {};
  const firstAnswer = new Promise<void>((resolve) => (answered = resolve));
  const inferenceDeps: InferenceDeps = {
    registry,
    maxRequestSizeBytes: config.maxRequestSizeBytes,
    maxResponseSizeBytes: config.maxResponseSizeBytes,
    allowPartialStart: config.allowPartialStart,
    startupProblems: () => [
      ...(startup.pending > 0 ? [`${startup.pending} model(s) still loading`] : []),
      ...(config.allowPartialStart ? [] : startup.failed),
    ],
    hiddenHeaders: config.token !== undefined && config.authApis.includes('inference') ? ['authorization'] : [],
    closing: () => closing,
    onResult: (model, result, requestId) => {
      if (result.ok) answered();
      // A server-side failure is logged with the handler's stack (mapped to its .ts source).
      if (!result.ok && result.error.status >= 500 && result.error.status !== 503) {
        logged.add(result.error);
        log.error(`[${model.name}] request ${requestId} failed: ${withStack(result.error)}`);
      }
    },
    // Every other 5xx that reaches a client (a bug in Kiln, say) is logged too, with its stack.
    onServerError: (error, request) => {
      if (logged.has(error) || (error.cause instanceof Error && logged.has(error.cause))) return;
      log.error(`request ${request.id} ${request.method} ${request.url.split('?')[0]} failed: ${withStack(error)}`);
    },
  };
  // Models start loading before the APIs are built: their workers boot (a thread or process each,
  // loading ONNX Runtime) on other cores while this thread sets up fastify and listens.
  const unpacked: Promise<void>[] = [];
  const loading = sources.map(async ({ name, path }, i): Promise<ModelVersion | Error> => {
    let done = () => {};
    unpacked.push(new Promise<void>((resolve) => (done = resolve)));
    try {
      const model = await service.register(path, name, plan.startup[i] ?? {}, true, done);
      model.loadedAtStartup = true;
      return model;
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    } finally {
      done();
      startup.pending--;
    }
  });
  // Models registered over the management API before the last stop: registered again, as then. One
  // that cannot be (its archive gone, its URL no longer allowed) is a warning: the command line did
  // not ask for it.
  const restoring = plan.api.map(async (saved): Promise<ModelVersion | undefined> => {
    const { minWorkers, maxWorkers } = saved;
    try {
      const path = await service.resolveUrl(saved.url);
      const model = await service.register(path, saved.name, { ...saved.overrides, minWorkers, maxWorkers }, true);
      service.registeredFromApi(model, saved.url, saved.overrides);
      return model;
    } catch (error) {
      log.warn(`model ${saved.name} ${saved.version} from the snapshot (url ${saved.url}) was not restored: ${(error as Error).message}`);
      return undefined;
    } finally {
      startup.pending--;
    }
  });
  // Archives unpack first (a small one in tens of milliseconds, 14 MB in about 400): their workers
  // then create their sessions while this thread loads fastify and listens.
  let headStart: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(unpacked), new Promise((resolve) => (headStart = setTimeout(resolve, UNPACK_HEAD_START_MS))), aborted]);
  clearTimeout(headStart);
  if (signal?.aborted) return abandon();

  // The HTTP layer (fastify and its plugins) is imported only now, while the workers boot.
  const { startApis } = await import('./http/apis.js');
  let apps: Record<ApiName, FastifyInstance>;
  let addresses: Record<ApiName, string>;
  try {
    const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());
    const inferenceFirst =
      sources.length === 0
        ? undefined
        : Promise.race([
            Promise.all(loading).then(() => Promise.race([firstAnswer, wait(FIRST_ANSWER_WAIT_MS)])),
            wait(OTHER_APIS_WAIT_MS),
          ]);
    ({ apps, addresses } = await startApis(
      {
        config,
        inference: inferenceDeps,
        service,
        registry,
        metrics: await metricsReady,
        accessLog: logs.access,
        closing: () => closing,
        inferenceFirst,
      },
      log,
    ));
  } catch (error) {
    await stopModels();
    throw error;
  }
  // The gRPC API, when on, is started once the HTTP APIs listen: gRPC's libraries are loaded only
  // then (about 150 ms with the proto), never on the way to the inference API's first answer.
  let grpc: GrpcApi | undefined;
  if (config.grpcAddress !== undefined && !signal?.aborted) {
    try {
      const { startGrpcApi } = await import('./grpc/grpc-api.js');
      grpc = await startGrpcApi({ config, inference: inferenceDeps, service, metrics: await metricsReady, accessLog: logs.access }, log);
    } catch (error) {
      await Promise.all(Object.values(apps).map((app) => app.close()));
      await stopModels();
      throw error;
    }
  }
  // TorchServe's gRPC APIs (inference.proto, management.proto), the same way.
  let tsGrpc: TorchServeGrpcApis | undefined;
  if ((config.tsGrpcInferenceAddress !== undefined || config.tsGrpcManagementAddress !== undefined) && !signal?.aborted) {
    try {
      const { startTorchServeGrpcApis } = await import('./grpc/torchserve-grpc.js');
      tsGrpc = await startTorchServeGrpcApis(
        { config, inference: inferenceDeps, service, metrics: await metricsReady, accessLog: logs.access },
        log,
      );
    } catch (error) {
      await Promise.all(Object.values(apps).map((app) => app.close()));
      await grpc?.close(Date.now());
      await stopModels();
      throw error;
    }
  }
  if (signal?.aborted) {
    await Promise.all(Object.values(apps).map((app) => app.close()));
    await grpc?.close(Date.now());
    await tsGrpc?.close(Date.now());
    return abandon();
  }

  // Each model's line comes after the listening lines, whenever it finished loading.
  const loaded = Promise.all(
    sources.map(async ({ name, path }, i) => {
      const model = await loading[i]!;
      if (model instanceof Error) {
        const code = (model as { code?: string }).code;
        const label = name ?? basename(path);
        startup.failed.push(`${label}: ${model.message}`);
        log.error(`model ${label} failed to load from ${path}: ${code?.startsWith('KILN_ERR_') ? `${code} ` : ''}${model.message}`);
        return undefined;
      }
      (model.state.kind === 'ready' ? log.info : log.error)(readyLine(model));
      return model;
    }),
  )
    .then(async (models) => {
      const restored = (await Promise.all(restoring)).filter((m): m is ModelVersion => m !== undefined);
      for (const model of restored)
        (model.state.kind === 'ready' ? log.info : log.error)(`${readyLine(model)} (restored from the snapshot)`);
      for (const { name, version } of plan.defaults)
        if (registry.versions(name).some((v) => v.version === version)) registry.setDefault(name, version);
      return [...models, ...restored];
    })
    .then((models) => models.filter((m): m is ModelVersion => m !== undefined));
  // Folders of killed servers are cleaned once the models are up: never on the way to a first answer.
  void loaded.then(() => removeStaleWorkDirs(dirname(workDir), log));
  // The providers this machine can run, logged once: also off the way to a first answer.
  // (A child process of about 0.4 s of CPU: after the first answer, or a while after the models are up.)
  if (config.probeProviders) {
    const settled = new Promise((resolve) => setTimeout(resolve, OTHER_APIS_WAIT_MS).unref());
    void loaded
      .then(() => Promise.race([firstAnswer, settled]))
      .then(() => {
        if (!closing) void devices.probeAll();
      });
  }

  return {
    addresses,
    grpcAddress: grpc?.address,
    tsGrpcInferenceAddress: tsGrpc?.inference?.address,
    tsGrpcManagementAddress: tsGrpc?.management?.address,
    registry,
    loaded,
    async close() {
      if (closing) return;
      closing = true;
      log.info('shutting down: answering accepted requests, then stopping workers');
      // Stop listening; requests already accepted finish through the batchers, and their responses
      // carry `Connection: close` so keep-alive clients let go.
      const closed = Promise.all(Object.values(apps).map((app) => app.close()));
      const drainedBy = Date.now() + config.drainTimeoutMs;
      // gRPC the same: no new calls; those in flight, and open streams' requests, are answered.
      const grpcClosed = Promise.all([grpc?.close(drainedBy), tsGrpc?.close(drainedBy)]);
      await Promise.all(registry.all().map((model) => model.drain(Math.max(0, drainedBy - Date.now()))));
      await new Promise((r) => setImmediate(r)); // let the last responses be written
      for (const app of Object.values(apps)) app.server.closeAllConnections();
      await closed;
      await grpcClosed;
      // Queues were drained (or the drain time ran out) above: stop the workers now, and any model
      // still loading (its unpacking ends at the next entry, its workers at once).
      await stopModels();
      log.info('stopped');
      logs.flush();
    },
  };
}

/** `CODE: message` and the stack below it, for the log. */
function withStack(error: KilnError): string {
  const trace = error.stack?.split('\n').slice(1).join('\n');
  return `${error.code}: ${error.message}${trace ? `\n${trace}` : ''}`;
}

/** One line per model when it is ready (or failed): what serves it and how it batches. */
export function readyLine(model: ModelVersion): string {
  const c = model.config;
  if (model.state.kind !== 'ready') return `model ${model.name} ${model.version} FAILED: ${model.reason}`;
  const workers = model.readyWorkers;
  const gpus = model.gpus;
  const where = model.onGpu ? ` on ${model.providers[0]}${gpus.length > 0 ? ` (GPU ${gpus.join(', ')})` : ''}` : '';
  return `model ${model.name} ${model.version} ready: ${workers} ${model.isolation} worker${workers === 1 ? '' : 's'}${where}, batchSize ${c.batchSize}, maxBatchDelay ${c.maxBatchDelayMs === 'auto' ? 'auto' : `${c.maxBatchDelayMs} ms`}, jobQueueSize ${c.jobQueueSize}`;
}

/** `name=path`, `path` or `all` (every archive in the model store). Relative paths look in the model store first. */
export function modelSources(config: ServerConfig): { name: string | undefined; path: string }[] {
  const sources: { name: string | undefined; path: string }[] = [];
  for (const spec of config.models) {
    if (spec === 'all') {
      if (config.modelStore === undefined)
        throw serverError('KILN_ERR_SERVER_CONFIG_INVALID', '--models all needs --model-store, the folder to load every archive from');
      if (!existsSync(config.modelStore) || !statSync(config.modelStore).isDirectory()) {
        throw serverError('KILN_ERR_SERVER_CONFIG_INVALID', `--model-store ${config.modelStore} is not a folder`);
      }
      for (const file of readdirSync(config.modelStore).sort()) {
        const path = join(config.modelStore, file);
        const isArchive =
          /\.(mar|tar\.gz|tgz)$/.test(file) || (statSync(path).isDirectory() && existsSync(join(path, 'MAR-INF/MANIFEST.json')));
        if (isArchive) sources.push({ name: undefined, path });
      }
      continue;
    }
    const at = spec.indexOf('=');
    const name = at === -1 ? undefined : spec.slice(0, at);
    // A bad name stops the server before it listens, like any other bad --models.
    if (name !== undefined) checkModelName(name, `--models ${spec}: the name`);
    const location = at === -1 ? spec : spec.slice(at + 1);
    const inStore = config.modelStore !== undefined && !isAbsolute(location) ? join(config.modelStore, location) : undefined;
    sources.push({ name, path: inStore !== undefined && existsSync(inStore) ? inStore : resolve(location) });
  }
  return sources;
}

/** A worker's log level (a handler's, or "info"/"warn" for its stdout and stderr), as the logs take it. */
function asLevel(level: string): LogLevelName {
  return level === 'error' || level === 'warn' || level === 'debug' ? level : 'info';
}
