import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Isolation } from '@kiln/handler-sdk/runtime';
import type { ParentMessage, WorkerMessage } from './protocol.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface TransportEvents {
  onMessage(message: WorkerMessage): void;
  /** A line the worker wrote to its stdout or stderr. */
  onOutput(stream: 'stdout' | 'stderr', line: string): void;
  /** An error that ended the worker without a message of its own (a thread out of heap, say). */
  onError(error: Error): void;
}

export interface TransportOptions {
  /** The worker's JavaScript heap cap (model-config workerHeapLimitMb); undefined: V8's default. */
  heapLimitMb: number | undefined;
  events: TransportEvents;
}

/**
 * How the pool talks to one worker, a thread or a process (docs/decisions/0004-worker-isolation.md).
 * The pool and PoolWorker are the same for both; only this differs.
 */
export interface WorkerTransport {
  readonly isolation: Isolation;
  /** The OS process the worker runs in: the server's own for a thread. */
  readonly pid: number | undefined;
  /** The worker thread's id; undefined for a process. */
  readonly threadId: number | undefined;
  send(message: ParentMessage): void;
  /** Settles once, when the worker has ended. Hook it once, never per request. */
  readonly exited: Promise<ExitInfo>;
  /**
   * Ends the worker without waiting for its batch: SIGKILL for a process; for a thread, a request to
   * exit, then terminate() if it is stuck in JavaScript (see thread-transport.ts).
   */
  kill(): void;
}

/** Feeds a worker's stdout or stderr to `events.onOutput` a line at a time. */
export function forwardLines(stream: Readable | null, name: 'stdout' | 'stderr', events: TransportEvents): void {
  if (stream === null) return;
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => events.onOutput(name, line));
}

/** The server's environment without its secrets: handler code never sees the auth token. */
export function workerEnv(): NodeJS.ProcessEnv {
  const { KILN_TOKEN: _token, KILN_TOKEN_FILE: _file, ...env } = process.env;
  return env;
}

export const WORKER_ENTRY = new URL('../worker/worker-main.js', import.meta.url);
