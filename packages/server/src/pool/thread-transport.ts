import { Worker } from 'node:worker_threads';
import { lentBuffers } from './lent-buffers.js';
import { requestBuffers, type ParentMessage, type WorkerBoot, type WorkerMessage } from './protocol.js';
import { WORKER_ENTRY, forwardLines, workerEnv, type ExitInfo, type TransportOptions, type WorkerTransport } from './transport.js';

/** How long a thread asked to exit may take before it is terminated (it is stuck in JavaScript). */
const TERMINATE_AFTER_MS = 1_000;

/**
 * A worker on a `node:worker_threads` thread of the server's process. Batches cross as transferred
 * ArrayBuffers: no copy, no serialization of the bytes. `process.exit` or an uncaught error in the
 * handler ends only the thread. A native crash (a segfault in an addon) still takes the whole
 * server down: that is what the process transport is for.
 */
export class ThreadTransport implements WorkerTransport {
  readonly isolation = 'thread';
  readonly exited: Promise<ExitInfo>;
  /** Kept from the start: Worker.threadId reads -1 once the thread has ended. */
  readonly threadId: number;
  private readonly worker: Worker;
  private readonly flags = new Int32Array(new SharedArrayBuffer(8));
  private ended = false;

  constructor(options: TransportOptions) {
    const { events } = options;
    this.worker = new Worker(WORKER_ENTRY, {
      workerData: { transport: 'thread', flags: this.flags.buffer as SharedArrayBuffer } satisfies WorkerBoot,
      stdout: true,
      stderr: true,
      env: workerEnv(),
      ...(options.heapLimitMb === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: options.heapLimitMb } }),
    });
    this.threadId = this.worker.threadId;
    this.worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'results') for (const buffer of message.returned ?? []) lentBuffers.give(buffer);
      events.onMessage(message);
    });
    this.worker.on('error', (error) => events.onError(error));
    forwardLines(this.worker.stdout, 'stdout', events);
    forwardLines(this.worker.stderr, 'stderr', events);
    this.exited = new Promise((resolve) =>
      this.worker.once('exit', (code) => {
        this.ended = true;
        resolve({ code, signal: null });
      }),
    );
  }

  get pid(): number {
    return process.pid;
  }

  send(message: ParentMessage): void {
    this.worker.postMessage(message, message.type === 'batch' ? requestBuffers(message.requests) : []);
  }

  /**
   * Ends the thread. terminate() from outside may land while the thread is inside native code (an
   * ONNX Runtime run, an addon loading), and the addon then aborts the whole process. So the thread
   * is first asked to exit, which it does as soon as its event loop turns; a thread that has not
   * gone after a second is terminated once it is booted and outside native code. A native call that
   * never returns keeps its thread until it does: only the process transport can end that.
   */
  kill(): void {
    if (this.ended) return;
    this.worker.postMessage({ type: 'exit' } satisfies ParentMessage);
    const terminateIfStuck = () => {
      if (this.ended) return;
      const booted = Atomics.load(this.flags, 0) === 1;
      const inNative = Atomics.load(this.flags, 1) > 0;
      if (booted && !inNative) void this.worker.terminate();
      else setTimeout(terminateIfStuck, booted ? 10 : TERMINATE_AFTER_MS).unref();
    };
    setTimeout(terminateIfStuck, TERMINATE_AFTER_MS).unref();
  }
}
