import { fork, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Device, WireError, WireRequest, WireResult } from '@kiln/handler-sdk';
import type { ParentMessage, WorkerMessage } from './protocol.js';

const WORKER_ENTRY = fileURLToPath(new URL('../worker/worker-main.js', import.meta.url));
const TAIL_LINES = 5;

export type WorkerState = 'starting' | 'idle' | 'busy' | 'stopping' | 'dead';

export interface WorkerEvents {
  onLog(level: string, message: string, fields: Record<string, unknown>): void;
  onMetric(sample: unknown): void;
}

/** One forked worker process and what it is doing. The pool decides what to do with it. */
export class WorkerProcess {
  readonly child: ChildProcess;
  state: WorkerState = 'starting';
  providers: string[] = [];
  /** The handler's last fatal error, or the worker's last lines of stderr: why it died. */
  lastError: string | undefined;
  readonly startedAt = Date.now();
  private readonly stderrTail: string[] = [];
  private batchId = 0;
  private inflight: { id: number; resolve: (results: WireResult[]) => void } | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private loadSettled: ((error: WireError | undefined) => void) | undefined;

  constructor(
    readonly id: string,
    private readonly events: WorkerEvents,
  ) {
    this.child = fork(WORKER_ENTRY, [], {
      serialization: 'advanced',
      execArgv: ['--enable-source-maps'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: workerEnv(),
      // A process group of its own: Ctrl-C in a terminal reaches the server, which drains and then
      // stops its workers, instead of killing them mid-batch. A worker exits if the server goes.
      detached: true,
    });
    for (const [stream, level] of [[this.child.stdout, 'info'], [this.child.stderr, 'warn']] as const) {
      if (stream === null) continue;
      createInterface({ input: stream }).on('line', (line) => {
        if (level === 'warn') {
          this.stderrTail.push(line);
          if (this.stderrTail.length > TAIL_LINES) this.stderrTail.shift();
        }
        this.events.onLog(level, line, { worker: this.id, stream: level === 'warn' ? 'stderr' : 'stdout' });
      });
    }
    this.child.on('message', (message: WorkerMessage) => this.onMessage(message));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      this.state = 'dead';
      this.loadSettled?.({ code: 'KILN_ERR_HANDLER_LOAD', status: 500, message: `the worker exited (${describeExit(code, signal)}) while loading${this.why()}`, phase: undefined, itemIndex: 0, stack: undefined });
      resolve({ code, signal });
    }));
    this.child.on('error', () => {}); // reported through 'exit'
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Loads the model; resolves with undefined when ready, or the load error. */
  load(modelDir: string, device: Device, intraOpNumThreads: number): Promise<WireError | undefined> {
    return new Promise((resolve) => {
      this.loadSettled = (error) => {
        this.loadSettled = undefined;
        resolve(error);
      };
      this.send({ type: 'load', modelDir, device, intraOpNumThreads });
    });
  }

  /** Sends a batch; resolves with its results, or undefined if the worker died first. */
  run(requests: WireRequest[]): Promise<WireResult[] | undefined> {
    this.state = 'busy';
    const id = ++this.batchId;
    return new Promise((resolve) => {
      this.inflight = { id, resolve };
      void this.exited.then(() => {
        if (this.inflight?.id === id) {
          this.inflight = undefined;
          resolve(undefined);
        }
      });
      this.send({ type: 'batch', id, requests });
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.state !== 'dead') this.child.kill(signal);
  }

  /** Asks the worker to dispose and exit; kills it if it has not gone after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (this.state === 'dead') return;
    this.state = 'stopping';
    this.send({ type: 'stop' });
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** ", last error: ..." for messages, when the worker said anything before dying. */
  why(): string {
    const reason = this.lastError ?? this.stderrTail.at(-1);
    return reason === undefined ? '' : `; last error: ${reason}`;
  }

  private send(message: ParentMessage): void {
    if (this.child.connected) this.child.send(message);
  }

  private onMessage(message: WorkerMessage): void {
    switch (message.type) {
      case 'ready':
        this.providers = message.providers;
        this.state = 'idle';
        this.loadSettled?.(undefined);
        return;
      case 'load-failed':
        this.lastError = message.error.message;
        this.loadSettled?.(message.error);
        return;
      case 'results':
        if (this.inflight?.id === message.id) {
          const { resolve } = this.inflight;
          this.inflight = undefined;
          if (this.state === 'busy') this.state = 'idle';
          resolve(message.results);
        }
        return;
      case 'log':
        this.events.onLog(message.level, message.message, { ...message.fields, worker: this.id });
        return;
      case 'metric':
        this.events.onMetric(message.sample);
        return;
      case 'fatal':
        this.lastError = message.error.message;
        return;
    }
  }
}

/** The server's environment without its secrets: handler code never sees the auth token. */
function workerEnv(): NodeJS.ProcessEnv {
  const { KILN_TOKEN: _token, KILN_TOKEN_FILE: _file, ...env } = process.env;
  return env;
}

export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `killed by ${signal}` : `exit code ${code}`;
}
