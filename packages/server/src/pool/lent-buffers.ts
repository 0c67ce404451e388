/**
 * Request memory that worker threads give back. A v2 body is read into a buffer of its own, which
 * is transferred to a worker thread with its batch; when the batch is answered the thread transfers
 * it back, and the next body of the same size class is read into it. Without this, every request
 * allocates its body afresh: on this machine the page faults of a 588 KiB body and the garbage
 * collections its external memory sets off cost about 0.3 ms of the HTTP thread per request
 * (docs/guides/performance.md#request-memory).
 */
export class LentBuffers {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private held = 0;

  /** Keeps at most `maxBytes` of free buffers in all, and `perSize` of each size class. */
  constructor(
    private readonly maxBytes: number,
    private readonly perSize: number,
  ) {}

  /** An ArrayBuffer of at least `length` bytes, not zeroed: one given back, or a new one. */
  take(length: number): ArrayBuffer {
    const size = sizeClass(length);
    const buffer = this.free.get(size)?.pop();
    if (buffer !== undefined) {
      this.held -= size;
      return buffer;
    }
    return Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer;
  }

  /** Takes back a buffer nothing refers to any more; one of another size, or one too many, is left to the GC. */
  give(buffer: ArrayBuffer): void {
    const size = buffer.byteLength;
    if (size === 0 || size !== sizeClass(size) || this.held + size > this.maxBytes) return;
    const list = this.free.get(size) ?? [];
    if (list.length >= this.perSize) return;
    list.push(buffer);
    this.free.set(size, list);
    this.held += size;
  }

  /** Bytes held for reuse. */
  get heldBytes(): number {
    return this.held;
  }
}

const PAGE = 4096;
const sizeClass = (length: number) => Math.max(PAGE, Math.ceil(length / PAGE) * PAGE);

/** The server's one pool of request bodies: 64 MiB at most, 16 buffers of each size. */
export const lentBuffers = new LentBuffers(64 * 1024 * 1024, 16);
