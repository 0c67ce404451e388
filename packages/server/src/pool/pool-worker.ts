import { sdkError, type KilnError } from '@kiln/handler-sdk/errors';
import {
  fromWireError,
  type Device,
  type HandlerHooks,
  type Isolation,
  type MetricSample,
  type PhaseTimings,
  type Result,
  type WireRequest,
} from '@kiln/handler-sdk/runtime';
import type { ParentMessage, WorkerMessage } from './protocol.js';
import { ProcessTransport } from './process-transport.js';
import { ThreadTransport } from './thread-transport.js';
import type { ExitInfo, WorkerTransport } from './transport.js';

const TAIL_LINES = 5;

export type WorkerState = 'starting' | 'idle' | 'busy' | 'stopping' | 'dead';

export interface WorkerEvents {
  onLog(level: string, message: string, fields: Record<string, unknown>): void;
  onMetric(sample: MetricSample): void;
  /**
   * A batch's handler phases, in milliseconds, when the handler timed them. Called just before the
   * batch's results resolve, in the same turn of the event loop.
   */
  onTimings?(timings: PhaseTimings): void;
  /** A worker was started to replace one that ended unasked. */
  onRestart?(): void;
  /** A worker loaded its model, `ms` after it was started. */
  onLoaded?(worker: string, ms: number): void;
}

export interface WorkerSpec {
  id: string;
  isolation: Isolation;
  heapLimitMb: number | undefined;
  events: WorkerEvents;
}

/**
 * One worker, thread or process, and what it is doing. It keeps at most one batch in flight and
 * settles it exactly once: with the worker's results, or with `undefined` when the worker ends
 * first. The exit is hooked once, here, never per batch: a hook per batch on a promise that only
 * settles at exit would keep every batch's requests, and their tensors, alive.
 */
export class PoolWorker {
  state: WorkerState = 'starting';
  /** The execution providers its session runs with, as it reported once loaded; the first is the one in use. */
  providers: string[] = [];
  /** The device it was loaded on. */
  device: Device | undefined;
  /** The handler's optional hooks, as the worker reported them when it loaded; undefined until then. */
  hooks: HandlerHooks | undefined;
  /** The handler's last fatal error, or the worker's last stderr line: why it died. */
  lastError: string | undefined;
  /** The worker's JavaScript heap in use, as it last reported. */
  heapBytes = 0;
  readonly startedAt = Date.now();
  readonly transport: WorkerTransport;
  private readonly stderrTail: string[] = [];
  private batchId = 0;
  private inflight: { id: number; resolve: (results: Result[] | undefined) => void } | undefined;
  private loadSettled: ((error: KilnError | undefined) => void) | undefined;
  private stopRequested = false;

  constructor(readonly spec: WorkerSpec) {
    const events = {
      onMessage: (message: WorkerMessage) => this.onMessage(message),
      onOutput: (stream: 'stdout' | 'stderr', line: string) => {
        // The tail keeps lines that can say why (not blank lines, not stack frames or their
        // headings: an abort or an out-of-memory death prints pages of those last).
        if (stream === 'stderr' && !/^\s*$|^\s*(\d+: |at |-----|<---)/.test(line)) {
          this.stderrTail.push(line);
          if (this.stderrTail.length > TAIL_LINES) this.stderrTail.shift();
          // V8's own last words ("Reached heap limit Allocation failed - JavaScript heap out of
          // memory") say why better than the native stack frames printed after them.
          const fatal = /FATAL ERROR: (.+)$/.exec(line);
          if (fatal !== null) this.lastError = fatal[1]!.trim();
        }
        spec.events.onLog(stream === 'stderr' ? 'warn' : 'info', line, { worker: spec.id, stream });
      },
      onError: (error: Error) => {
        this.lastError ??= error.message;
      },
    };
    const options = { heapLimitMb: spec.heapLimitMb, events };
    this.transport = spec.isolation === 'thread' ? new ThreadTransport(options) : new ProcessTransport(options);
    void this.transport.exited.then((exit) => this.onExit(exit));
  }

  get id(): string {
    return this.spec.id;
  }

  get exited(): Promise<ExitInfo> {
    return this.transport.exited;
  }

  /** Loads the model; resolves with undefined when ready, or with the load error. */
  load(spec: Omit<Extract<ParentMessage, { type: 'load' }>, 'type'>): Promise<KilnError | undefined> {
    return new Promise((resolve) => {
      this.loadSettled = (error) => {
        this.loadSettled = undefined;
        resolve(error);
      };
      this.device = spec.device;
      this.transport.send({ type: 'load', ...spec });
    });
  }

  /** Settles a load in progress with an error (startupTimeout ran out); the pool then retires the worker. */
  failLoad(message: string): void {
    this.lastError = message;
    this.loadSettled?.(sdkError('KILN_ERR_HANDLER_LOAD', message));
  }

  /** Sends a batch; resolves with its results, or undefined if the worker ended first. */
  run(requests: WireRequest[]): Promise<Result[] | undefined> {
    this.state = 'busy';
    const id = ++this.batchId;
    return new Promise((resolve) => {
      this.inflight = { id, resolve };
      this.transport.send({ type: 'batch', id, requests });
    });
  }

  kill(): void {
    if (this.state !== 'dead') this.transport.kill();
  }

  /**
   * Asks the worker to finish the batch in hand, dispose its handler and exit; ends it anyway
   * after `graceMs`.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.state === 'dead') return;
    if (this.state !== 'busy') this.state = 'stopping';
    this.stopRequested = true;
    this.transport.send({ type: 'stop' });
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.transport.exited;
    clearTimeout(timer);
  }

  /** "; last error: ..." for messages, when the worker said anything before it ended. */
  why(): string {
    const reason = this.lastError ?? this.stderrTail.at(-1);
    return reason === undefined ? '' : `; last error: ${reason}`;
  }

  /** True when the pool asked for this exit (scaling down, unregistering, shutting down). */
  get stopping(): boolean {
    return this.stopRequested;
  }

  private onExit(exit: ExitInfo): void {
    this.state = 'dead';
    this.loadSettled?.(sdkError('KILN_ERR_HANDLER_LOAD', `the worker ended (${describeExit(exit)}) while loading${this.why()}`));
    const inflight = this.inflight;
    this.inflight = undefined;
    inflight?.resolve(undefined);
  }

  private onMessage(message: WorkerMessage): void {
    switch (message.type) {
      case 'ready':
        this.providers = message.providers;
        this.hooks = message.hooks;
        this.heapBytes = message.heapBytes;
        this.state = this.stopRequested ? 'stopping' : 'idle';
        this.loadSettled?.(undefined);
        return;
      case 'load-failed':
        this.lastError = message.error.message;
        this.loadSettled?.(fromWireError(message.error));
        return;
      case 'results':
        if (this.inflight?.id === message.id) {
          const { resolve } = this.inflight;
          this.inflight = undefined;
          this.heapBytes = message.heapBytes;
          this.state = this.stopRequested ? 'stopping' : 'idle';
          if (message.timings !== undefined) this.spec.events.onTimings?.(message.timings);
          // Errors cross as plain data; from here on they are KilnErrors again.
          resolve(message.results.map((r) => (r.ok ? r : { ok: false, error: fromWireError(r.error) })));
        }
        return;
      case 'log':
        this.spec.events.onLog(message.level, message.message, { ...message.fields, worker: this.id });
        return;
      case 'metric':
        this.spec.events.onMetric(message.sample);
        return;
      case 'fatal':
        this.lastError = message.error.message;
        return;
    }
  }
}

export function describeExit({ code, signal }: ExitInfo): string {
  return signal !== null ? `killed by ${signal}` : `exit code ${code}`;
}
