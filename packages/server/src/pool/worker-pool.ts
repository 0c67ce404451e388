import type { Device, WireError, WireRequest, WireResult } from '@kiln/handler-sdk';
import type { BatchRunner } from '../batching/batcher.js';
import { failedResult, serverError } from '../errors.js';
import { describeExit, WorkerProcess, type WorkerEvents } from './worker-process.js';

export interface PoolOptions {
  model: string;
  version: string;
  modelDir: string;
  workers: number;
  responseTimeoutMs: number;
  startupTimeoutMs: number;
  intraOpNumThreads: number;
  /** The device for the n-th worker (GPU ids round-robin over deviceIds). */
  device: (index: number) => Device;
  events: WorkerEvents;
  /** Called whenever a worker becomes free, so the batcher can send the next batch. */
  onFree: () => void;
}

const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const RECOVERY_ATTEMPTS = 5;

/**
 * The worker processes of one model version: starts them, hands each batch to an idle one,
 * enforces responseTimeout and startupTimeout, and restarts any that die, with exponential backoff.
 */
export class WorkerPool implements BatchRunner {
  private readonly workers = new Set<WorkerProcess>();
  private target: number;
  private spawned = 0;
  private failures = 0;
  private stopped = false;
  private everReady = false;
  private restartTimer: NodeJS.Timeout | undefined;
  /** The last reason a worker failed to load or died, for /ping, describe and error messages. */
  lastError: string | undefined;

  constructor(private readonly options: PoolOptions) {
    this.target = options.workers;
  }

  /** Starts the workers; resolves when one is ready, or with the load error if every first attempt failed. */
  /** Settles when every worker started by start() is ready or has failed. */
  initialWorkers: Promise<unknown> = Promise.resolve();

  async start(): Promise<WireError | undefined> {
    const attempts = Array.from({ length: this.target }, () => this.spawn());
    this.initialWorkers = Promise.all(attempts);
    const errors: WireError[] = [];
    return new Promise((resolve) => {
      let settled = false;
      attempts.forEach((attempt) =>
        attempt.then((error) => {
          if (settled) return;
          if (error === undefined) {
            settled = true;
            resolve(undefined);
          } else if (errors.push(error) === attempts.length) {
            settled = true;
            resolve(errors[0]);
          }
        }),
      );
    });
  }

  /**
   * Whether the model should keep taking requests: a worker is ready, or workers served before and
   * are being restarted after fewer than RECOVERY_ATTEMPTS failures in a row (requests wait in the
   * queue meanwhile, as TorchServe counts recovering workers as healthy).
   */
  get serving(): boolean {
    return this.readyCount > 0 || (this.everReady && !this.stopped && this.failures < RECOVERY_ATTEMPTS);
  }

  get readyCount(): number {
    return [...this.workers].filter((w) => w.state === 'idle' || w.state === 'busy').length;
  }

  get size(): number {
    return this.target;
  }

  /** False once the pool has given up: the batcher then fails what waits instead of holding it. */
  available(): boolean {
    return this.serving;
  }

  freeWorkers(): number {
    let free = 0;
    for (const w of this.workers) if (w.state === 'idle') free++;
    return free;
  }

  list(): readonly WorkerProcess[] {
    return [...this.workers];
  }

  async run(batch: WireRequest[]): Promise<WireResult[]> {
    const worker = [...this.workers].find((w) => w.state === 'idle');
    if (worker === undefined) return batch.map(() => failedResult(serverError('KILN_ERR_MODEL_NOT_READY', `model "${this.options.model}" has no free worker`)));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.options.events.onLog('warn', `worker ${worker.id} did not answer within responseTimeout (${this.options.responseTimeoutMs / 1000} s); stopping it`, {});
      worker.kill('SIGKILL');
    }, this.options.responseTimeoutMs);
    const results = await worker.run(batch);
    clearTimeout(timer);
    if (results !== undefined) {
      this.failures = 0;
      this.options.onFree();
      return results;
    }
    const { code, signal } = await worker.exited;
    const error = timedOut
      ? serverError('KILN_ERR_RESPONSE_TIMEOUT', `model "${this.options.model}" did not answer within responseTimeout (${this.options.responseTimeoutMs / 1000} s); worker ${worker.id} was stopped and is being restarted`)
      : serverError('KILN_ERR_WORKER_DIED', `the worker of model "${this.options.model}" (pid ${worker.pid}) died while running this request (${describeExit(code, signal)}${worker.why()}); it is being restarted`);
    return batch.map(() => failedResult(error));
  }

  /**
   * Sets the number of workers, starting or stopping processes to match. New workers get
   * `intraOpNumThreads` for the new count (cores ÷ workers, unless the model fixes it).
   */
  async scale(workers: number, intraOpNumThreads?: number): Promise<void> {
    this.target = workers;
    if (intraOpNumThreads !== undefined) this.options.intraOpNumThreads = intraOpNumThreads;
    const live = [...this.workers].filter((w) => w.state !== 'stopping' && w.state !== 'dead');
    const starts: Promise<unknown>[] = [];
    for (let i = live.length; i < workers; i++) starts.push(this.spawn());
    const surplus = live.slice(workers).sort((a, b) => (a.state === 'idle' ? -1 : 0) - (b.state === 'idle' ? -1 : 0));
    await Promise.all([...starts, ...surplus.map((w) => w.stop(STOP_GRACE_MS))]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await Promise.all([...this.workers].map((w) => w.stop(STOP_GRACE_MS)));
  }

  private spawn(): Promise<WireError | undefined> {
    const index = this.spawned++;
    const worker = new WorkerProcess(`${this.options.model}-${this.options.version}-w${index}`, this.options.events);
    this.workers.add(worker);
    void worker.exited.then(({ code, signal }) => this.onExit(worker, code, signal));
    const timer = setTimeout(() => {
      worker.lastError = `initialize() did not finish within startupTimeout (${this.options.startupTimeoutMs / 1000} s)`;
      worker.kill('SIGKILL');
    }, this.options.startupTimeoutMs);
    return worker.load(this.options.modelDir, this.options.device(index), this.options.intraOpNumThreads).then((error) => {
      clearTimeout(timer);
      if (error === undefined) {
        this.everReady = true;
        this.failures = 0;
        this.options.onFree();
        return undefined;
      }
      this.lastError = error.message;
      worker.kill('SIGKILL');
      return error;
    });
  }

  private onExit(worker: WorkerProcess, code: number | null, signal: NodeJS.Signals | null): void {
    const wasStopping = worker.state === 'stopping' || this.stopped;
    this.workers.delete(worker);
    if (wasStopping) return;
    this.lastError = `worker ${worker.id} exited (${describeExit(code, signal)}${worker.why()})`;
    this.options.events.onLog('error', this.lastError, {});
    this.failures++;
    this.scheduleRestart();
    this.options.onFree(); // the batcher re-checks: a pool that gave up fails its queue
  }

  private scheduleRestart(): void {
    if (this.stopped || this.restartTimer !== undefined) return;
    const live = [...this.workers].filter((w) => w.state !== 'stopping' && w.state !== 'dead').length;
    if (live >= this.target) return;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, this.failures - 1));
    this.options.events.onLog('info', `restarting a worker of model "${this.options.model}" in ${delay} ms`, {});
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      // A failed start ends in onExit, which counts the failure and schedules the next try.
      void this.spawn();
    }, delay);
    this.restartTimer.unref();
  }
}
