import { rm } from 'node:fs/promises';
import type {
  Device,
  HandlerHooks,
  Isolation,
  LogLevel,
  Manifest,
  ModelConfig,
  PhaseTimings,
  Result,
  Signature,
  WireRequest,
} from '@kiln/handler-sdk/runtime';
import { GPU_PROVIDERS, type GpuUsage } from '@kiln/handler-sdk/runtime';
import { Batcher, type ClientGone, type RequestTrace } from '../batching/batcher.js';
import { serverError } from '../errors.js';
import { gpuUsageText } from '../observability/gpu-usage.js';
import type { VersionView } from '../observability/server-metrics.js';
import type { VersionMetrics } from '../observability/version-metrics.js';
import type { WorkerEvents } from '../pool/pool-worker.js';
import { defaultIntraOpThreads } from '../pool/threads.js';
import { WorkerPool, type Prestarted } from '../pool/worker-pool.js';
import { Autoscaler, type ScaleTimings } from '../pool/autoscale.js';
import type { RequestedDevice } from './devices.js';

/** Where a model version is in its life. Only `ready` takes requests. */
export type VersionState =
  { kind: 'loading' } | { kind: 'ready' } | { kind: 'failed'; reason: string } | { kind: 'draining' } | { kind: 'stopped' };

export interface VersionSpec {
  name: string;
  version: string;
  /** Where the archive came from (a path in the model store, or given on the command line). */
  archive: string;
  manifest: Manifest;
  config: ModelConfig;
  /** The unpacked archive; removed when the version stops. */
  modelDir: string;
  /** The model's isolation, or the server's default where the model leaves it out. */
  isolation: Isolation;
  events: WorkerEvents;
  /** The server's --log-level, for the handlers' context.logger (info unless told). */
  logLevel?: LogLevel | undefined;
  /** Each worker's device (devices.ts); default: the config's deviceIds round-robin, GPU 0 when none. */
  device?: (index: number) => Device;
  /** What the model-config asked for, where this machine changed it (devices.ts). */
  requested?: RequestedDevice;
}

export interface WorkerDescription {
  id: string;
  startTime: string;
  status: 'READY' | 'STARTING' | 'UNLOADING';
  memoryUsage: number;
  pid: number | undefined;
  threadId: number | undefined;
  /** Whether its session runs on a GPU provider. */
  gpu: boolean;
  gpuUsage: string;
  /** The GPU it was given, for a GPU worker. */
  deviceId?: number;
  /** The execution provider its session runs on; undefined until it has loaded. */
  executionProvider: string | undefined;
}

/**
 * One registered model version and everything that serves it: its config and manifest, its
 * workers and its batcher. Routes only call its methods; none reaches into the pool or batcher.
 */
export class ModelVersion {
  readonly name: string;
  readonly version: string;
  readonly archive: string;
  readonly manifest: Manifest;
  readonly isolation: Isolation;
  /** True for models given at start (--models), false for ones registered over the management API. */
  loadedAtStartup = false;
  private current: ModelConfig;
  private phase: VersionState = { kind: 'loading' };
  private readonly pool: WorkerPool;
  private readonly batcher: Batcher;
  private readonly autoscaler: Autoscaler;
  private readonly modelDir: string;
  /** Its series in the metrics, once it is registered (see observe). */
  private metrics: VersionMetrics | undefined;
  /** The handler's timing of the batch whose results are resolving (WorkerEvents.onTimings). */
  private timings: PhaseTimings | undefined;
  /** The handler's optional hooks, once a worker has reported them (see hooks). */
  private handlerHooks: HandlerHooks | undefined;

  constructor(private readonly spec: VersionSpec) {
    ({
      name: this.name,
      version: this.version,
      archive: this.archive,
      manifest: this.manifest,
      isolation: this.isolation,
      modelDir: this.modelDir,
    } = spec);
    // The isolation the version really runs with, so that describe and the handler's context agree.
    const config = (this.current = Object.freeze({ ...spec.config, isolation: spec.isolation }));
    this.pool = new WorkerPool({
      model: this.name,
      version: this.version,
      modelDir: this.modelDir,
      manifest: this.manifest,
      config,
      isolation: this.isolation,
      heapLimitMb: config.workerHeapLimitMb,
      workers: config.minWorkers,
      responseTimeoutMs: config.responseTimeoutS * 1000,
      startupTimeoutMs: config.startupTimeoutS * 1000,
      intraOpNumThreads: config.intraOpNumThreads ?? defaultIntraOpThreads(Math.max(1, config.minWorkers)),
      device: spec.device ?? deviceFor(config),
      logLevel: spec.logLevel ?? 'info',
      events: {
        ...spec.events,
        // A batch's timings arrive just before its results, which end in batchDone below.
        onTimings: (ms) => (this.timings = ms),
        onRestart: () => this.metrics?.restarted(),
        onLoaded: (worker, ms) => this.metrics?.workerLoaded(worker, ms),
      },
      onChange: () => this.onPoolChange(),
    });
    this.batcher = new Batcher(this.pool, {
      model: this.name,
      batchSize: config.batchSize,
      maxBatchDelayMs: config.maxBatchDelayMs,
      maxLatencyMs: config.maxLatencyMs,
      jobQueueSize: config.jobQueueSize,
      clientTimeoutMs: config.clientTimeoutMs,
      observer: {
        queued: (seconds) => this.metrics?.queued(seconds),
        batchDone: (size, seconds) => {
          this.metrics?.batchDone(size, seconds, this.timings);
          this.timings = undefined;
        },
        starved: () => this.pool.demand(this.threadsFor(1)),
      },
    });
    this.autoscaler = new Autoscaler(
      () => ({
        target: this.pool.targetCount,
        free: this.pool.freeWorkers(),
        starting: this.pool.startingCount(),
        queued: this.batcher.queued,
        running: this.batcher.pending - this.batcher.queued,
        minWorkers: this.current.minWorkers,
        maxWorkers: this.current.maxWorkers,
      }),
      (target) => {
        this.spec.events.onLog('info', `autoscaling model "${this.name}" version ${this.version} to ${target} workers`, {});
        void this.pool.scale(target, this.threadsFor(target));
      },
      scaleTimings(config),
    );
  }

  /** The intra-op threads of a worker started when the version has `workers` workers. */
  private threadsFor(workers: number): number {
    return this.current.intraOpNumThreads ?? defaultIntraOpThreads(Math.max(1, workers));
  }

  /** Where this version's measurements go from now on: set when it is registered. */
  observe(metrics: VersionMetrics): void {
    this.metrics = metrics;
  }

  /** Its series in the metrics (undefined until it is registered). */
  get measured(): VersionMetrics | undefined {
    return this.metrics;
  }

  get state(): VersionState {
    return this.phase;
  }

  get config(): ModelConfig {
    return this.current;
  }

  get signature(): Signature | undefined {
    return this.manifest.signature;
  }

  /**
   * Starts the workers (adopting ones started before the config was known). Resolves once one is
   * ready or all failed; with `everyWorker`, once each initial worker is ready or has failed.
   */
  async start(prestarted?: Prestarted, everyWorker = false): Promise<void> {
    const error = await this.pool.start(prestarted);
    if (this.phase.kind === 'loading') this.phase = error === undefined ? { kind: 'ready' } : { kind: 'failed', reason: error.message };
    if (this.phase.kind === 'ready') this.autoscaler.update(this.current.maxWorkers > this.current.minWorkers);
    if (everyWorker) await this.pool.initialWorkers;
  }

  /** Queues one request; resolves with its result, an error result when it cannot be served. */
  submit(request: WireRequest, signal?: ClientGone, trace?: RequestTrace): Promise<Result> {
    if (this.phase.kind !== 'ready') {
      return Promise.resolve({
        ok: false,
        error: serverError('KILN_ERR_MODEL_NOT_READY', `model "${this.name}" version ${this.version} cannot serve: ${this.reason}`),
      });
    }
    return this.batcher.submit(request, signal, trace);
  }

  /**
   * Sets the number of workers; the new ones get cores ÷ workers threads unless the model fixes it.
   * A version being unregistered is refused at once (a throw, not a rejection), so a caller that
   * does not wait for the scaling still hears about it.
   */
  scale(minWorkers: number, maxWorkers: number): Promise<void> {
    if (this.phase.kind === 'draining' || this.phase.kind === 'stopped') {
      throw serverError('KILN_ERR_MODEL_NOT_READY', `model "${this.name}" version ${this.version} cannot be scaled: ${this.reason}`);
    }
    this.current = Object.freeze({ ...this.current, minWorkers, maxWorkers });
    this.pool.onDemand = minWorkers === 0;
    this.autoscaler.update(maxWorkers > minWorkers);
    return this.pool.scale(minWorkers, this.threadsFor(minWorkers));
  }

  /** Takes no more requests and answers what is queued; resolves when done or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.phase.kind === 'stopped') return;
    this.phase = { kind: 'draining' };
    this.autoscaler.stop();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([this.batcher.drained(), timeout]);
    clearTimeout(timer);
  }

  /** Stops the workers (each finishes its batch in hand) and removes the unpacked archive. */
  async stop(): Promise<void> {
    if (this.phase.kind === 'stopped') return;
    this.phase = { kind: 'draining' };
    this.autoscaler.stop();
    this.batcher.failAll(
      serverError('KILN_ERR_MODEL_NOT_READY', `model "${this.name}" version ${this.version} was stopped before this request ran`),
    );
    await this.pool.stop();
    this.phase = { kind: 'stopped' };
    this.metrics?.remove();
    this.metrics = undefined;
    await rm(this.modelDir, { recursive: true, force: true });
  }

  /** Why the version cannot serve right now, for 503 messages, /ping and describe. */
  get reason(): string {
    switch (this.phase.kind) {
      case 'loading':
        return 'it is still loading';
      case 'draining':
        return 'it is being unregistered';
      case 'stopped':
        return 'it was unregistered';
      case 'failed':
        return `it has no working worker: ${this.phase.reason}`;
      case 'ready':
        return 'it is ready';
    }
  }

  /** A version given at start that never had a worker ready: what --allow-partial-start forgives. */
  get failedAtStart(): boolean {
    return this.loadedAtStartup && this.phase.kind === 'failed' && !this.pool.everLoaded;
  }

  /** Whether the version takes requests, and if not why: for /ping, the v2 and v1 ready routes. */
  health(): { ready: boolean; reason: string } {
    return { ready: this.phase.kind === 'ready', reason: this.reason };
  }

  /** How many more requests the queue takes now (jobQueueSize less those waiting). */
  get queueRoom(): number {
    return Math.max(0, this.current.jobQueueSize - this.batcher.queued);
  }

  /**
   * Whether the handler has explain() and describe(), as the first worker to load reported them;
   * undefined until one has (a version whose workers start on demand), when a worker tells.
   */
  get hooks(): HandlerHooks | undefined {
    return (this.handlerHooks ??= this.pool.list().find((w) => w.hooks !== undefined)?.hooks);
  }

  get readyWorkers(): number {
    return this.pool.readyCount;
  }

  /**
   * TorchServe's DescribeModelResponse for this version, plus Kiln's state, isolation, signature and
   * execution providers. `memoryOf` reads a process's resident memory, `gpus` is nvidia-smi's word on
   * the GPUs (a GPU worker's `gpuUsage`); the registry adds `isDefault`.
   */
  describe(memoryOf: (pid: number | undefined) => number, gpus: readonly GpuUsage[] = []) {
    const c = this.current;
    return {
      modelName: this.name,
      modelVersion: this.version,
      modelUrl: this.archive,
      engine: 'onnxruntime',
      runtime: 'node',
      status: this.phase.kind,
      ...(this.phase.kind === 'ready' ? {} : { statusReason: this.reason }),
      isolation: this.isolation,
      minWorkers: c.minWorkers,
      maxWorkers: c.maxWorkers,
      batchSize: c.batchSize,
      maxBatchDelay: c.maxBatchDelayMs,
      responseTimeout: c.responseTimeoutS,
      startupTimeout: c.startupTimeoutS,
      clientTimeoutInMills: c.clientTimeoutMs,
      // What runs, never only what was asked for: the providers of a loaded worker's session.
      deviceType: c.deviceType,
      deviceIds: c.deviceIds,
      executionProviders: this.providers,
      requested: this.spec.requested ?? { deviceType: c.deviceType, executionProviders: c.executionProviders },
      workerHeapLimitMb: c.workerHeapLimitMb,
      loadedAtStartup: this.loadedAtStartup,
      workers: this.workers(memoryOf, gpus),
      jobQueueStatus: { remainingCapacity: c.jobQueueSize - this.batcher.queued, pendingRequests: this.batcher.queued },
      signature: this.signature,
    };
  }

  /** What the metrics' gauges read at each scrape: the queue, and each worker's state and memory. */
  view(memoryOf: (pid: number | undefined) => number): VersionView {
    return {
      name: this.name,
      version: this.version,
      provider: this.providers[0] ?? 'cpu',
      onGpu: this.onGpu,
      queued: this.batcher.queued,
      workers: this.pool.list().map((w) => ({
        id: w.id,
        state: w.state === 'dead' ? 'stopping' : w.state,
        memoryBytes: w.transport.threadId === undefined ? memoryOf(w.transport.pid) : w.heapBytes,
      })),
    };
  }

  private workers(memoryOf: (pid: number | undefined) => number, gpus: readonly GpuUsage[]): WorkerDescription[] {
    return this.pool.list().map((w) => {
      const gpu = w.providers.length > 0 && GPU_PROVIDERS.has(w.providers[0]!);
      return {
        id: w.id,
        startTime: new Date(w.startedAt).toISOString(),
        status: w.state === 'idle' || w.state === 'busy' ? 'READY' : w.state === 'starting' ? 'STARTING' : 'UNLOADING',
        // A process's resident memory; a thread shares its process's, so its own JavaScript heap.
        memoryUsage: w.transport.threadId === undefined ? memoryOf(w.transport.pid) : w.heapBytes,
        pid: w.transport.pid,
        threadId: w.transport.threadId,
        gpu,
        gpuUsage: gpu ? gpuUsageText(gpus, w.device?.id) : 'N/A',
        ...(w.device?.type === 'gpu' && w.device.id !== undefined ? { deviceId: w.device.id } : {}),
        executionProvider: w.providers[0],
      };
    });
  }

  /** Whether its sessions run on a GPU execution provider. */
  get onGpu(): boolean {
    return GPU_PROVIDERS.has(this.providers[0] ?? '');
  }

  /** The GPUs the version's workers were given. */
  get gpus(): number[] {
    return [...new Set(this.pool.list().flatMap((w) => (w.device?.type === 'gpu' && w.device.id !== undefined ? [w.device.id] : [])))];
  }

  /**
   * The execution providers the version's sessions run with, the one in use first: a loaded
   * worker's, or, before any has loaded, those the version will try (which load on this machine).
   */
  get providers(): readonly string[] {
    return this.pool.list().find((w) => w.providers.length > 0)?.providers ?? this.current.executionProviders;
  }

  /** The pool's health may have changed: a worker came up, ended, or the pool gave up. */
  private onPoolChange(): void {
    const serving = this.pool.serving;
    if (this.phase.kind === 'ready' && !serving) this.phase = { kind: 'failed', reason: this.pool.lastError ?? 'every worker ended' };
    else if (this.phase.kind === 'failed' && serving) this.phase = { kind: 'ready' };
    this.batcher.pump();
  }
}

function scaleTimings(config: ModelConfig): ScaleTimings {
  return { upAfterMs: config.scaleUpAfterMs, downAfterMs: config.scaleDownAfterS * 1000 };
}

/** GPU workers take the config's deviceIds round-robin (GPU 0 when none are listed). */
function deviceFor(config: ModelConfig): (index: number) => Device {
  if (config.deviceType !== 'gpu') return () => ({ type: 'cpu', id: undefined });
  const ids = config.deviceIds.length > 0 ? config.deviceIds : [0];
  return (index) => ({ type: 'gpu', id: ids[index % ids.length]! });
}
