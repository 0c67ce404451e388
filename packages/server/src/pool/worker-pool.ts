import type { KilnError } from '@kiln/handler-sdk/errors';
import type { Device, Isolation, LogLevel, Manifest, ModelConfig, Result, WireRequest } from '@kiln/handler-sdk/runtime';
import type { BatchRunner } from '../batching/batcher.js';
import { serverError } from '../errors.js';
import { PoolWorker, describeExit, type WorkerEvents } from './pool-worker.js';

export interface PoolOptions {
  model: string;
  version: string;
  modelDir: string;
  manifest: Manifest;
  config: ModelConfig;
  isolation: Isolation;
  heapLimitMb: number | undefined;
  workers: number;
  responseTimeoutMs: number;
  startupTimeoutMs: number;
  intraOpNumThreads: number;
  /** The server's --log-level, for the handlers' context.logger. */
  logLevel: LogLevel;
  /** The device for the n-th worker (GPU ids round-robin over deviceIds). */
  device: (index: number) => Device;
  events: WorkerEvents;
  /** Called whenever a worker becomes free, or the pool's health may have changed. */
  onChange: () => void;
}

const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const RECOVERY_ATTEMPTS = 5;
/** A worker up this long before it ended was working: its end starts a new count of failures. */
const STABLE_MS = 10_000;
/** After a worker started on demand failed to load, requests fail at once for this long (doubling). */
const DEMAND_BACKOFF_BASE_MS = 1_000;

/** Workers started before their model's config was known (see registry/load-version.ts). */
export interface Prestarted {
  isolation: Isolation;
  workers: PoolWorker[];
}

/**
 * The workers of one model version: starts them, hands each batch to an idle one, enforces
 * responseTimeout and startupTimeout, and restarts any that end unasked, with exponential backoff.
 */
export class WorkerPool implements BatchRunner {
  private readonly workers = new Set<PoolWorker>();
  private target: number;
  private spawned = 0;
  private failures = 0;
  private stopped = false;
  private everReady = false;
  private restartTimer: NodeJS.Timeout | undefined;
  /**
   * minWorkers is 0: with no worker, the pool stays serving and starts one on the first request
   * (demand). A worker started so that fails to load fails the requests waiting for it, and the
   * next start waits for demandRetryAt.
   */
  onDemand: boolean;
  private demanding = false;
  private demandFailures = 0;
  private demandRetryAt = 0;
  /** A start() waiting for its first ready worker. */
  private starting: { resolve: (error: KilnError | undefined) => void; error: KilnError | undefined } | undefined;
  /** The last reason a worker failed to load or died, for /ping, describe and error messages. */
  lastError: string | undefined;
  /** Settles when every worker started by start() is ready or has failed. */
  initialWorkers: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: PoolOptions) {
    this.target = options.workers;
    this.onDemand = options.workers === 0;
  }

  /**
   * Starts the workers, adopting prestarted ones of the right kind (the rest are stopped); resolves
   * when one is ready, or with the first load error once no worker is left loading. A worker stopped
   * on purpose while it loads (scaled down meanwhile) is no failure: the start waits for the others.
   */
  async start(prestarted?: Prestarted): Promise<KilnError | undefined> {
    const adoptable = prestarted?.isolation === this.options.isolation && this.options.heapLimitMb === undefined ? prestarted.workers : [];
    for (const extra of prestarted?.workers.filter((w, i) => !adoptable.includes(w) || i >= this.target) ?? []) void extra.stop(0);
    if (this.target === 0) return undefined; // nothing to wait for: workers start on demand
    const started = new Promise<KilnError | undefined>((resolve) => (this.starting = { resolve, error: undefined }));
    this.initialWorkers = Promise.all(Array.from({ length: this.target }, (_, i) => this.spawn(adoptable[i])));
    this.checkStart();
    return started;
  }

  /** Settles start() once a worker is ready, or once none is loading any more. */
  private checkStart(error?: KilnError): void {
    const starting = this.starting;
    if (starting === undefined) return;
    starting.error ??= error;
    const loading = [...this.workers].some((w) => w.state === 'starting' && !w.stopping);
    if (this.readyCount === 0 && loading) return;
    if (this.readyCount === 0 && starting.error === undefined && !this.stopped) return;
    this.starting = undefined;
    starting.resolve(this.readyCount > 0 ? undefined : (starting.error ?? this.stoppedError()));
  }

  private stoppedError(): KilnError {
    return serverError('KILN_ERR_MODEL_NOT_READY', `model "${this.options.model}" was stopped while it started`);
  }

  /**
   * Whether the model should keep taking requests: a worker is ready, or workers served before and
   * are being restarted after fewer than RECOVERY_ATTEMPTS failures in a row (requests wait in the
   * queue meanwhile, as TorchServe counts recovering workers as healthy).
   */
  get serving(): boolean {
    if (this.readyCount > 0) return true;
    if (this.stopped) return false;
    if (this.onDemand && (this.target === 0 || this.demanding)) return true;
    return this.everReady && this.failures < RECOVERY_ATTEMPTS;
  }

  /** Whether any worker of this pool ever loaded. */
  get everLoaded(): boolean {
    return this.everReady;
  }

  get readyCount(): number {
    let ready = 0;
    for (const w of this.workers) if (w.state === 'idle' || w.state === 'busy') ready++;
    return ready;
  }

  /**
   * False once the pool has given up, or while a worker started on demand has just failed to
   * load: the batcher then fails what waits instead of holding it.
   */
  available(): boolean {
    if (this.onDemand && this.target === 0 && this.liveCount() === 0) return !this.stopped && Date.now() >= this.demandRetryAt;
    return this.serving;
  }

  /** Why available() is false, for the errors of the requests failed then. */
  unavailableReason(): string {
    if (this.stopped) return 'it was stopped';
    const why = this.lastError ?? 'every worker ended';
    if (this.onDemand && this.target === 0 && Date.now() < this.demandRetryAt) {
      return `the worker started for it on demand failed (${why}); the next one is started for a request that comes after ${new Date(this.demandRetryAt).toISOString()}`;
    }
    return `it has no working worker left (${why})`;
  }

  /**
   * Requests wait and no worker is free: a pool with no workers that may start on demand starts
   * one (with `intraOpNumThreads` threads), unless one failed to load a moment ago.
   */
  demand(intraOpNumThreads: number): void {
    if (!this.onDemand || this.stopped || this.target > 0 || this.liveCount() > 0 || Date.now() < this.demandRetryAt) return;
    this.demanding = true;
    this.options.events.onLog('info', `starting a worker of model "${this.options.model}" for a waiting request (minWorkers 0)`, {});
    void this.scale(1, intraOpNumThreads);
  }

  /** The number of workers the pool keeps running or starting. */
  get targetCount(): number {
    return this.target;
  }

  /** Workers still loading their model. */
  startingCount(): number {
    let starting = 0;
    for (const w of this.workers) if (w.state === 'starting' && !w.stopping) starting++;
    return starting;
  }

  freeWorkers(): number {
    let free = 0;
    for (const w of this.workers) if (w.state === 'idle') free++;
    return free;
  }

  list(): readonly PoolWorker[] {
    return [...this.workers];
  }

  async run(batch: WireRequest[]): Promise<Result[]> {
    let worker: PoolWorker | undefined;
    for (const w of this.workers) {
      if (w.state === 'idle') {
        worker = w;
        break;
      }
    }
    if (worker === undefined)
      return batch.map(() => failure(serverError('KILN_ERR_MODEL_NOT_READY', `model "${this.options.model}" has no free worker`)));
    // The batch fails at responseTimeout, whatever the worker does next: a thread inside a native
    // call that never returns cannot be ended, and its requests must not wait for it.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.options.responseTimeoutMs)));
    const results = await Promise.race([worker.run(batch), timeout]);
    clearTimeout(timer);
    if (results === 'timeout') {
      this.retire(
        worker,
        `worker ${worker.id} did not answer within responseTimeout (${this.options.responseTimeoutMs / 1000} s); stopping it`,
      );
      const error = serverError(
        'KILN_ERR_RESPONSE_TIMEOUT',
        `model "${this.options.model}" did not answer within responseTimeout (${this.options.responseTimeoutMs / 1000} s); worker ${worker.id} was stopped and is being restarted`,
      );
      return batch.map(() => failure(error));
    }
    if (results !== undefined) {
      this.failures = 0;
      this.options.onChange();
      return results;
    }
    const exit = await worker.exited; // settled already: the worker ended before answering
    const error = worker.stopping
      ? // Stopped on purpose (the drain time ran out, or it was scaled away): nothing restarts it.
        serverError(
          'KILN_ERR_WORKER_DIED',
          `the worker of model "${this.options.model}" (${where(worker)}) was stopped before it answered this request (${describeExit(exit)}): the model is being scaled down or unregistered, or the server is stopping`,
        )
      : serverError(
          'KILN_ERR_WORKER_DIED',
          `the worker of model "${this.options.model}" (${where(worker)}) died while running this request (${describeExit(exit)}${worker.why()}); it is being restarted`,
        );
    return batch.map(() => failure(error));
  }

  /**
   * Sets the number of workers. New workers get `intraOpNumThreads` for the new count (cores ÷
   * workers, unless the model fixes it). Scaling down stops idle workers first, then loading ones;
   * a busy one finishes its batch before it exits, so no request is lost.
   */
  async scale(workers: number, intraOpNumThreads?: number): Promise<void> {
    if (this.stopped) return; // a stopped pool never starts a worker again
    this.target = workers;
    if (intraOpNumThreads !== undefined) this.options.intraOpNumThreads = intraOpNumThreads;
    const rank = { idle: 0, starting: 1, busy: 2, stopping: 3, dead: 3 } as const;
    // Surplus goes in this order: idle workers, then loading ones, the youngest first (the oldest is
    // nearest to ready), then busy ones, which finish their batch before they exit.
    const live = [...this.workers]
      .filter((w) => !w.stopping && w.state !== 'dead')
      .sort((a, b) => rank[a.state] - rank[b.state] || (a.state === 'starting' ? b.startedAt - a.startedAt : 0));
    const starts: Promise<unknown>[] = [];
    for (let i = live.length; i < workers; i++) starts.push(this.spawn());
    const surplus = live.slice(0, Math.max(0, live.length - workers));
    await Promise.all([...starts, ...surplus.map((w) => w.stop(this.stopGraceMs))]);
    this.options.onChange();
  }

  /**
   * Stops every worker: a busy one finishes its batch (up to responseTimeout and a little more); one
   * still loading has nothing in hand and is ended at once. No worker starts after this.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const stopping = Promise.all([...this.workers].map((w) => w.stop(w.state === 'starting' ? 0 : this.stopGraceMs)));
    this.checkStart();
    await stopping;
  }

  /** A worker told to stop may finish the batch in hand: up to responseTimeout, then a little more. */
  private get stopGraceMs(): number {
    return this.options.responseTimeoutMs + STOP_GRACE_MS;
  }

  private spawn(adopted?: PoolWorker): Promise<KilnError | undefined> {
    if (this.stopped) {
      void adopted?.stop(0);
      return Promise.resolve(this.stoppedError());
    }
    const index = this.spawned++;
    const id = `${this.options.model}-${this.options.version}-w${index}`;
    const worker =
      adopted ??
      new PoolWorker({ id, isolation: this.options.isolation, heapLimitMb: this.options.heapLimitMb, events: this.options.events });
    worker.spec.id = id;
    worker.spec.events = this.options.events;
    this.workers.add(worker);
    void worker.exited.then((exit) => this.onExit(worker, describeExit(exit)));
    const timer = setTimeout(() => {
      worker.failLoad(`initialize() did not finish within startupTimeout (${this.options.startupTimeoutMs / 1000} s)`);
    }, this.options.startupTimeoutMs);
    const { modelDir, manifest, config, intraOpNumThreads, logLevel } = this.options;
    return worker.load({ modelDir, manifest, config, device: this.options.device(index), intraOpNumThreads, logLevel }).then((error) => {
      clearTimeout(timer);
      if (error === undefined) {
        // Loading is not surviving: the failure count is reset by a batch answered, or a worker
        // that stays up for STABLE_MS, so a worker that loads and then crashes each time still
        // backs off, and the model is reported failed after RECOVERY_ATTEMPTS.
        this.everReady = true;
        this.demanding = false;
        this.demandFailures = 0;
        this.options.events.onLoaded?.(worker.id, Date.now() - worker.startedAt);
        this.checkStart();
        this.options.onChange();
        return undefined;
      }
      if (worker.stopping) {
        // Stopped while it loaded (scaled down, or the pool stopping): not a failure.
        this.workers.delete(worker);
        this.checkStart();
        return error;
      }
      if (this.demanding && this.readyCount === 0) {
        // Started on demand and failed: back to no workers. The waiting requests fail with this
        // error (available() turns false), and the next start waits a while, doubling each time.
        this.demanding = false;
        this.target = 0;
        this.demandRetryAt = Date.now() + Math.min(BACKOFF_MAX_MS, DEMAND_BACKOFF_BASE_MS * 2 ** this.demandFailures++);
      }
      this.retire(worker, `worker ${worker.id} failed to load: ${error.message}`);
      this.lastError = error.message;
      this.checkStart(error);
      return error;
    });
  }

  /** Workers running or starting that were not told to stop. */
  private liveCount(): number {
    let live = 0;
    for (const w of this.workers) if (!w.stopping && w.state !== 'dead') live++;
    return live;
  }

  private onExit(worker: PoolWorker, how: string): void {
    // A retired worker was counted, and replaced, when it was retired.
    if (!this.workers.delete(worker) || worker.stopping || this.stopped) return;
    if (Date.now() - worker.startedAt >= STABLE_MS) this.failures = 0; // it ran fine for a while: a new failure, not a loop
    this.failed(`worker ${worker.id} exited (${how}${worker.why()})`);
  }

  /** Takes a worker out of service at once (it is killed, and replaced as if it had crashed). */
  private retire(worker: PoolWorker, reason: string): void {
    if (!this.workers.delete(worker)) return;
    worker.kill();
    if (!this.stopped) this.failed(reason);
  }

  private failed(reason: string): void {
    this.lastError = reason;
    this.options.events.onLog('error', reason, {});
    this.failures++;
    this.scheduleRestart();
    this.options.onChange(); // the batcher re-checks: a pool that gave up fails its queue
  }

  private scheduleRestart(): void {
    if (this.stopped || this.restartTimer !== undefined || this.liveCount() >= this.target) return;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, this.failures - 1));
    this.options.events.onLog('info', `restarting a worker of model "${this.options.model}" in ${delay} ms`, {});
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      // A scale while the restart waited may have started the missing workers already.
      if (this.stopped || this.liveCount() >= this.target) return;
      // A failed start ends in onExit, which counts the failure and schedules the next try.
      this.options.events.onRestart?.();
      void this.spawn();
    }, delay);
    this.restartTimer.unref();
  }
}

/** "pid 123" for a process, "thread 4 of pid 123" for a thread. */
export function where(worker: PoolWorker): string {
  const { pid, threadId } = worker.transport;
  return threadId === undefined ? `pid ${pid}` : `thread ${threadId} of pid ${pid}`;
}

const failure = (error: KilnError): Result => ({ ok: false, error });
