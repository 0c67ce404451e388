/**
 * The one file where the parent (pool/) and the worker process (worker/) meet: every message
 * either side may send over the IPC channel (child_process.fork, advanced serialization).
 * One request/response round trip per batch; bodies travel as bytes, never as JSON.
 */
import type { Device, LogLevel, MetricSample, WireError, WireRequest, WireResult } from '@kiln/handler-sdk';

export type ParentMessage =
  | { type: 'load'; modelDir: string; device: Device; intraOpNumThreads: number }
  | { type: 'batch'; id: number; requests: WireRequest[] }
  | { type: 'stop' };

export type WorkerMessage =
  | { type: 'ready'; providers: string[] }
  | { type: 'load-failed'; error: WireError }
  | { type: 'results'; id: number; results: WireResult[] }
  | { type: 'log'; level: LogLevel; message: string; fields: Record<string, unknown> }
  | { type: 'metric'; sample: MetricSample }
  /** Sent just before the worker exits on an uncaught error, so the parent can say why it died. */
  | { type: 'fatal'; error: WireError };
