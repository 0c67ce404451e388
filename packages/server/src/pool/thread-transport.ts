import { Worker } from 'node:worker_threads';
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
  private readonly booted = new Int32Array(new SharedArrayBuffer(4));
  private ended = false;

  constructor(options: TransportOptions) {
    const { events } = options;
    this.worker = new Worker(WORKER_ENTRY, {
      workerData: { transport: 'thread', booted: this.booted.buffer as SharedArrayBuffer } satisfies WorkerBoot,
      stdout: true,
      stderr: true,
      env: workerEnv(),
      ...(options.heapLimitMb === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: options.heapLimitMb } }),
    });
    this.threadId = this.worker.threadId;
    this.worker.on('message', (message: WorkerMessage) => events.onMessage(message));
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
   * Ends the thread. terminate() from outside may land while the thread is inside a native
   * callback (ONNX Runtime finishing a run, an addon loading), and the addon then aborts the whole
   * process. So the thread is first asked to exit, which it does as soon as its event loop turns,
   * even with a run in flight; only a thread stuck in JavaScript, booted, is terminated.
   */
  kill(): void {
    if (this.ended) return;
    this.worker.postMessage({ type: 'exit' } satisfies ParentMessage);
    const terminateIfStuck = () => {
      if (this.ended) return;
      if (Atomics.load(this.booted, 0) === 1) void this.worker.terminate();
      else setTimeout(terminateIfStuck, TERMINATE_AFTER_MS).unref();
    };
    setTimeout(terminateIfStuck, TERMINATE_AFTER_MS).unref();
  }
}
