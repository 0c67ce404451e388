/**
 * Binary frames for the process transport: a small JSON header for the message's shape, then every
 * typed array's bytes, raw and 8-byte aligned, so the reader can view them in place.
 *
 *   u32 frame length (after these 8 bytes) | u32 header length | header (UTF-8 JSON) | pad to 8
 *   | bytes of array 0 | pad to 8 | bytes of array 1 | pad to 8 | ...
 *
 * The header is `{"m": message, "a": [[type, byteLength], ...]}`, the message with each typed array
 * replaced by `{"\u0000a": index}` (a key no real message has). A frame is
 * written with one writev (cork, write, uncork) straight from the arrays' memory, and read into one
 * buffer allocated for it, whose arrays are views, not copies. Node's own IPC would V8-serialize the
 * bytes on both sides instead, about 1 ms of CPU per 100 KB each way.
 */
import type { Writable } from 'node:stream';

type View = ArrayBufferView & { length?: number };

const VIEW_TYPES = {
  Uint8Array,
  Int8Array,
  Uint16Array,
  Int16Array,
  Uint32Array,
  Int32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  Buffer,
} as const;
type ViewType = keyof typeof VIEW_TYPES;

const PAD = Buffer.alloc(8);
const ARRAY_KEY = '\u0000a';
const align = (n: number) => (n + 7) & ~7;

/** Writes one message as a frame. Returns false when the stream asks the writer to wait (rare: one batch per worker). */
export function writeFrame(stream: Writable, message: unknown): boolean {
  const arrays: View[] = [];
  const shape = strip(message, arrays);
  const header = Buffer.from(JSON.stringify({ m: shape, a: arrays.map((array) => [typeOf(array), array.byteLength]) }));
  const headerEnd = align(8 + header.length);
  let length = headerEnd - 8;
  for (const array of arrays) length += align(array.byteLength);
  const prefix = Buffer.allocUnsafe(8);
  prefix.writeUInt32LE(length, 0);
  prefix.writeUInt32LE(header.length, 4);
  stream.cork();
  stream.write(prefix);
  stream.write(header);
  if (headerEnd - 8 > header.length) stream.write(PAD.subarray(0, headerEnd - 8 - header.length));
  for (const array of arrays) {
    if (array.byteLength > 0) stream.write(Buffer.from(array.buffer, array.byteOffset, array.byteLength));
    const pad = align(array.byteLength) - array.byteLength;
    if (pad > 0) stream.write(PAD.subarray(0, pad));
  }
  stream.uncork();
  return !stream.writableNeedDrain;
}

function typeOf(array: View): ViewType {
  const type = Buffer.isBuffer(array) ? 'Buffer' : array.constructor.name;
  if (!(type in VIEW_TYPES)) throw new TypeError(`a ${type} cannot be sent to a worker process`);
  return type as ViewType;
}

/** Collects chunks into frames and hands each decoded message to `onMessage`. */
export class FrameReader {
  private prefix = Buffer.alloc(8);
  private prefixFill = 0;
  private frame: Buffer | undefined;
  private frameFill = 0;
  private headerLength = 0;

  constructor(private readonly onMessage: (message: unknown) => void) {}

  /**
   * Where the next read from the socket should land: the rest of the length prefix, or the rest
   * of the frame being read. A socket given this (net.Socket's `onread`) reads straight into the
   * frame, so a tensor is copied once, by the kernel, on its way in.
   */
  nextBuffer(): Buffer {
    return this.frame === undefined ? this.prefix.subarray(this.prefixFill) : this.frame.subarray(this.frameFill);
  }

  /** Counts `bytes` just read into nextBuffer(). */
  commit(bytes: number): void {
    if (this.frame === undefined) {
      this.prefixFill += bytes;
      if (this.prefixFill === 8) this.startFrame();
    } else {
      this.frameFill += bytes;
    }
    this.emitIfComplete();
  }

  /** Copies a chunk read elsewhere into the frames it belongs to. */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.frame === undefined) {
        const take = Math.min(8 - this.prefixFill, chunk.length - at);
        chunk.copy(this.prefix, this.prefixFill, at, at + take);
        this.prefixFill += take;
        at += take;
        if (this.prefixFill < 8) return;
        this.startFrame();
      }
      const frame = this.frame!;
      const take = Math.min(frame.length - this.frameFill, chunk.length - at);
      chunk.copy(frame, this.frameFill, at, at + take);
      this.frameFill += take;
      at += take;
      this.emitIfComplete();
    }
  }

  private startFrame(): void {
    this.prefixFill = 0;
    this.headerLength = this.prefix.readUInt32LE(4);
    // An allocation of its own (never Node's pool, and not zeroed: every byte is written before it
    // is read), so its arrays can be viewed in place and handed on without a copy.
    this.frame = Buffer.allocUnsafeSlow(this.prefix.readUInt32LE(0));
    this.frameFill = 0;
  }

  private emitIfComplete(): void {
    const frame = this.frame;
    if (frame === undefined || this.frameFill < frame.length) return;
    this.frame = undefined;
    this.onMessage(decode(frame, this.headerLength));
  }
}

function decode(frame: Buffer, headerLength: number): unknown {
  const header = JSON.parse(frame.toString('utf8', 0, headerLength)) as { m: unknown; a: [ViewType, number][] };
  let offset = align(8 + headerLength) - 8;
  const arrays = header.a.map(([type, byteLength]) => {
    const Ctor = VIEW_TYPES[type];
    const start = frame.byteOffset + offset;
    offset += align(byteLength);
    if (Ctor === Buffer) return Buffer.from(frame.buffer, start, byteLength);
    const bytesPer = (Ctor as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
    return new (Ctor as new (buffer: ArrayBufferLike, offset: number, length: number) => View)(frame.buffer, start, byteLength / bytesPer);
  });
  return restore(header.m, arrays);
}

/** The message with typed arrays replaced by placeholders; the arrays are pushed onto `arrays`. */
function strip(value: unknown, arrays: View[]): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? Number(value) : value;
  if (ArrayBuffer.isView(value)) {
    arrays.push(value);
    return { [ARRAY_KEY]: arrays.length - 1 };
  }
  if (Array.isArray(value)) return value.map((v) => strip(v, arrays));
  const out: Record<string, unknown> = {};
  for (const key in value) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = strip(v, arrays);
  }
  return out;
}

function restore(value: unknown, arrays: View[]): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = restore(value[i], arrays);
    return value;
  }
  const record = value as Record<string, unknown>;
  const index = record[ARRAY_KEY];
  if (typeof index === 'number') return arrays[index];
  for (const key in record) record[key] = restore(record[key], arrays);
  return record;
}
