/**
 * The one file where the parent (pool/) and a worker (worker/) meet: every message either side may
 * send, whichever transport carries it (docs/decisions/0004-worker-isolation.md). One round trip
 * per batch. Tensors and bodies travel as bytes: transferred ArrayBuffers between threads, raw
 * bytes after a small header between processes (./framing.ts), never JSON and never V8-serialized.
 */
import type {
  Device,
  HandlerHooks,
  LogLevel,
  Manifest,
  MetricSample,
  ModelConfig,
  PhaseTimings,
  WireError,
  WireRequest,
  WireResult,
} from '@kiln/handler-sdk/runtime';

export type ParentMessage =
  /** The manifest and config were checked by the server: the worker does not read them again. */
  | {
      type: 'load';
      modelDir: string;
      manifest: Manifest;
      config: ModelConfig;
      device: Device;
      intraOpNumThreads: number;
      /** `context.logger` drops lines below this in the worker, before they cross. */
      logLevel: LogLevel;
    }
  | { type: 'batch'; id: number; requests: WireRequest[] }
  /** Finish the batch in hand, dispose the handler, exit. */
  | { type: 'stop' }
  /** Exit now, batch or not (a response or startup timeout). */
  | { type: 'exit' };

export type WorkerMessage =
  /** `hooks`: the handler's optional hooks (explain, describe), so routes that need a missing one refuse at once. */
  | { type: 'ready'; providers: string[]; heapBytes: number; hooks: HandlerHooks }
  | { type: 'load-failed'; error: WireError }
  /**
   * `heapBytes`: the worker's JavaScript heap in use after the batch, for describe. `returned`
   * (threads only): the batch's request buffers, given back for the next bodies (lent-buffers.ts).
   * `timings`: milliseconds in each handler phase, when the handler timed them (kiln_batch_seconds).
   */
  | { type: 'results'; id: number; results: WireResult[]; heapBytes: number; returned?: ArrayBuffer[]; timings?: PhaseTimings | undefined }
  | { type: 'log'; level: LogLevel; message: string; fields: Record<string, unknown> }
  | { type: 'metric'; sample: MetricSample }
  /** Sent just before the worker exits on an uncaught error, so the parent can say why it died. */
  | { type: 'fatal'; error: WireError };

/** What a worker entry is started with: the thread's workerData, or the process's argv. */
export interface WorkerBoot {
  transport: 'thread' | 'process';
  /**
   * Thread transport: two Int32s the worker keeps up to date. [0] is 1 once its modules (ONNX
   * Runtime among them) are loaded; [1] counts the native calls in progress (runs, decodes). The
   * parent terminates the thread only when it is booted and outside native code (thread-transport.ts).
   */
  flags?: SharedArrayBuffer;
}

export { FrameReader, writeFrame } from './framing.js';

/**
 * The ArrayBuffers a batch can hand over to a worker thread without a copy: each request's body,
 * multipart parts and tensors were allocated for that request alone (see http/wire-request.ts and
 * kserve/v2-body.ts). Small bodies that share Node's Buffer pool are copied by postMessage, which
 * refuses to transfer the pool.
 */
export function requestBuffers(requests: readonly WireRequest[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const request of requests) {
    add(buffers, request.body);
    for (const field of Object.values(request.fields ?? {})) add(buffers, field.data);
    for (const tensor of Object.values(request.tensors ?? {})) add(buffers, tensor.data);
  }
  return [...buffers];
}

/** The ArrayBuffers of a batch's results that the worker may hand over: those it marked as its own. */
export function resultBuffers(results: readonly WireResult[], owned: (buffer: ArrayBufferLike) => boolean = () => true): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const result of results) {
    if (!result.ok) continue;
    const { body } = result;
    if (body.kind === 'bytes') add(buffers, body.data, owned);
    else if (body.kind === 'tensors') for (const output of body.outputs) add(buffers, output.data, owned);
  }
  return [...buffers];
}

/**
 * The request buffers a worker thread gives back once a batch is answered: all of them but any
 * an answer still points into (a handler that echoes its input).
 */
export function returnedBuffers(requests: readonly WireRequest[], results: readonly WireResult[]): ArrayBuffer[] {
  const answered = new Set(resultBuffers(results));
  return requestBuffers(requests).filter((buffer) => !answered.has(buffer));
}

function add(set: Set<ArrayBuffer>, data: unknown, owned: (buffer: ArrayBufferLike) => boolean = () => true): void {
  if (!ArrayBuffer.isView(data)) return;
  const buffer = data.buffer;
  // A SharedArrayBuffer is shared, not transferred; a view of Node's pool is copied.
  if (buffer instanceof ArrayBuffer && buffer.byteLength > 0 && owned(buffer)) set.add(buffer);
}
