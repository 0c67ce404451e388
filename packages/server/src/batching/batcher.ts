import { toKilnError, type KilnError } from '@kiln/handler-sdk/errors';
import type { Result, WireRequest } from '@kiln/handler-sdk/runtime';
import { serverError } from '../errors.js';
import { ArrivalGaps, BatchCostModel, decide } from './batch-policy.js';

/** What the batcher needs from a worker pool. */
export interface BatchRunner {
  freeWorkers(): number;
  /** False when no worker will come: queued requests are failed rather than held. */
  available?(): boolean;
  /** Why available() is false, for the failed requests' error. */
  unavailableReason?(): string;
  /** Runs one batch on a free worker; resolves with one result per request, never rejects. */
  run(batch: WireRequest[]): Promise<Result[]>;
}

/**
 * Whether the client is still waiting: an AbortSignal fits, and so does a plain object whose flag a
 * socket's 'close' sets (cheaper than an AbortController on every request).
 */
export interface ClientGone {
  readonly aborted: boolean;
}

export interface BatcherOptions {
  model: string;
  batchSize: number;
  /** A fixed wait, or 'auto': held only while it pays off (batch-policy.ts). */
  maxBatchDelayMs: number | 'auto';
  /** With 'auto': the longest a request may be held for its batch. */
  maxLatencyMs?: number | undefined;
  jobQueueSize: number;
  /** 0: requests never expire in the queue. */
  clientTimeoutMs: number;
  /** Told of each request's wait and each batch's round trip (the metrics). */
  observer?: BatchObserver | undefined;
  now?: () => number;
}

/** What the batcher measures, as it measures it. */
export interface BatchObserver {
  /** A request's batch was sent `seconds` after the request arrived. */
  queued(seconds: number): void;
  /** A batch of `size` requests came back `seconds` after it was sent. */
  batchDone(size: number, seconds: number): void;
  /** Requests wait and no worker is free (a pool at zero workers starts one). */
  starved?(): void;
}

/** What became of one request in the queue, for its access-log line: filled in when its batch is sent. */
export interface RequestTrace {
  queueMs?: number;
  batchSize?: number;
}

interface Job {
  request: WireRequest;
  arrival: number;
  signal: ClientGone | undefined;
  trace: RequestTrace | undefined;
  settle: (result: Result) => void;
}

/**
 * One per model version: a bounded queue in front of the worker pool. It owns the timers; the
 * decision of when to send lives in batch-policy.ts.
 */
export class Batcher {
  private readonly queue: Job[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private inFlight = 0;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly now: () => number;
  /** What 'auto' learns: the cost of a batch by its size, and how often requests arrive. */
  readonly cost = new BatchCostModel();
  private readonly gaps = new ArrivalGaps();

  constructor(
    private readonly runner: BatchRunner,
    private readonly options: BatcherOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
  }

  get queued(): number {
    return this.queue.length;
  }

  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  /** Queues a request; resolves with its result (an error result when it cannot be served). */
  submit(request: WireRequest, signal?: ClientGone, trace?: RequestTrace): Promise<Result> {
    if (this.queue.length >= this.options.jobQueueSize) {
      return Promise.resolve(
        failure(
          serverError(
            'KILN_ERR_QUEUE_FULL',
            `model "${this.options.model}" has ${this.queue.length} requests waiting, its limit (jobQueueSize ${this.options.jobQueueSize}); retry shortly, or raise jobQueueSize or the number of workers`,
          ),
        ),
      );
    }
    return new Promise((settle) => {
      const arrival = this.now();
      if (this.options.maxBatchDelayMs === 'auto') this.gaps.arrived(arrival);
      this.queue.push({ request, arrival, signal, trace, settle });
      this.pump();
    });
  }

  /** Re-evaluates the queue: call when a request arrives, a worker frees up, or a timer fires. */
  pump(): void {
    this.dropDead();
    if (this.queue.length > 0 && this.runner.freeWorkers() === 0) this.options.observer?.starved?.();
    if (this.queue.length > 0 && this.runner.available?.() === false) {
      const why = this.runner.unavailableReason?.() ?? 'it has no working worker left';
      this.failAll(
        serverError('KILN_ERR_MODEL_NOT_READY', `model "${this.options.model}" cannot serve: ${why}; its queued requests were not run`),
      );
      return;
    }
    for (;;) {
      const decision = decide({
        waiting: this.queue.length,
        oldestArrival: this.queue[0]?.arrival,
        now: this.now(),
        freeWorkers: this.runner.freeWorkers(),
        batchSize: this.options.batchSize,
        maxBatchDelayMs: this.options.maxBatchDelayMs,
        // Only 'auto' reads what was learned; a fixed delay costs nothing extra per request.
        ...(this.options.maxBatchDelayMs === 'auto'
          ? { auto: { cost: this.cost.estimate(), meanGapMs: this.gaps.meanMs, maxLatencyMs: this.options.maxLatencyMs } }
          : {}),
      });
      if (decision.kind === 'dispatch') {
        this.dispatch(this.queue.splice(0, decision.size));
        continue;
      }
      if (decision.kind === 'wait') this.arm(decision.until);
      return;
    }
  }

  /** Resolves once nothing is queued or running. */
  drained(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Fails every queued request (used when the model is removed or the pool cannot start). */
  failAll(error: Error): void {
    for (const job of this.queue.splice(0)) job.settle(failure(toKilnError(error)));
    this.notifyIdle();
  }

  private dispatch(jobs: Job[]): void {
    this.inFlight += jobs.length;
    const started = this.now();
    const observer = this.options.observer;
    for (const job of jobs) {
      const waited = started - job.arrival;
      observer?.queued(waited / 1000);
      if (job.trace !== undefined) {
        job.trace.queueMs = waited;
        job.trace.batchSize = jobs.length;
      }
    }
    void this.runner.run(jobs.map((j) => j.request)).then((results) => {
      const took = this.now() - started;
      observer?.batchDone(jobs.length, took / 1000);
      if (this.options.maxBatchDelayMs === 'auto' && results.every((r) => r.ok)) this.cost.observe(jobs.length, took);
      jobs.forEach((job, i) => job.settle(results[i]!));
      this.inFlight -= jobs.length;
      this.notifyIdle();
      this.pump();
    });
  }

  /** Drops requests whose client left or whose clientTimeoutInMills ran out, before they run. */
  private dropDead(): void {
    const now = this.now();
    const limit = this.options.clientTimeoutMs;
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const job = this.queue[i]!;
      if (job.signal?.aborted) {
        this.queue.splice(i, 1);
        job.settle(failure(serverError('KILN_ERR_CLIENT_TIMEOUT', 'the client disconnected before the request ran')));
      } else if (limit > 0 && now - job.arrival >= limit) {
        this.queue.splice(i, 1);
        job.settle(
          failure(
            serverError(
              'KILN_ERR_CLIENT_TIMEOUT',
              `the request waited ${Math.round(now - job.arrival)} ms in the queue of model "${this.options.model}", longer than clientTimeoutInMills (${limit}); it was not run`,
            ),
          ),
        );
      }
    }
    if (limit > 0 && this.queue.length > 0) this.arm(this.queue[0]!.arrival + limit);
    this.notifyIdle();
  }

  private arm(at: number): void {
    if (this.timer !== undefined && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.pump();
      },
      Math.max(0, at - this.now()),
    );
    this.timer.unref?.();
  }

  private notifyIdle(): void {
    if (this.pending === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

const failure = (error: KilnError): Result => ({ ok: false, error });
