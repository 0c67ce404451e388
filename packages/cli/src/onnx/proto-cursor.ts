import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/**
 * Reads protobuf wire format from a file by position, so a model of any size is walked with a
 * small window in memory: large fields (weights) are skipped by moving the position, never read.
 */
export class ProtoCursor {
  readonly size: number;
  private readonly fd: number;
  private window = Buffer.alloc(64 * 1024);
  private windowStart = 0;
  private windowEnd = 0;
  pos = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'r');
    this.size = fstatSync(this.fd).size;
  }

  close(): void {
    closeSync(this.fd);
  }

  private byteAt(pos: number): number {
    if (pos >= this.size) throw new WireError(`unexpected end of file at byte ${pos}`);
    if (pos < this.windowStart || pos >= this.windowEnd) {
      const read = readSync(this.fd, this.window, 0, this.window.length, pos);
      this.windowStart = pos;
      this.windowEnd = pos + read;
    }
    return this.window[pos - this.windowStart]!;
  }

  /** A base-128 varint as a JS number; exact up to 2^53, enough for lengths and tags. */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const byte = this.byteAt(this.pos++);
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new WireError(`malformed varint before byte ${this.pos}`);
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wireType: number } {
    const tag = this.varint();
    return { field: Math.floor(tag / 8), wireType: tag % 8 };
  }

  /** Length of a length-delimited field, checked against `end`. */
  length(end: number): number {
    const length = this.varint();
    if (this.pos + length > end) throw new WireError(`field of ${length} bytes at byte ${this.pos} overruns its message`);
    return length;
  }

  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    const read = readSync(this.fd, out, 0, length, this.pos);
    if (read !== length) throw new WireError(`unexpected end of file at byte ${this.pos + read}`);
    this.pos += length;
    return out;
  }

  /** Skips a field's value of the given wire type. */
  skip(wireType: number, end: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2: {
        const length = this.length(end); // read first: it moves pos past the length itself
        this.pos += length;
        return;
      }
      case 5:
        this.pos += 4;
        break;
      default:
        throw new WireError(`wire type ${wireType} at byte ${this.pos} is not valid here`);
    }
    if (this.pos > end) throw new WireError(`fixed-size field overruns its message at byte ${end}`);
  }
}

/** The bytes are not well-formed protobuf. */
export class WireError extends Error {}
