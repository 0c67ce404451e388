import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import type { FileEntry } from '@kiln/handler-sdk/runtime';

/** One file to store: read from disk (streamed) or already in memory (the bundled handler, say). */
export interface ArchiveEntry {
  /** Relative POSIX path inside the archive. */
  path: string;
  /** Where it came from, for messages: `--extra-files labels/`, `--handler src/handler.ts`. */
  origin: string;
  source: { kind: 'file'; file: string; size: number } | { kind: 'bytes'; bytes: Buffer };
}

export function entrySize(entry: ArchiveEntry): number {
  return entry.source.kind === 'file' ? entry.source.size : entry.source.bytes.length;
}

/** Reading in 1 MiB chunks keeps syscalls few without holding much memory. */
const CHUNK = 1 << 20;

/**
 * Opens an entry's bytes as a stream that also measures them: size and sha256 are known when
 * the stream ends, in the same pass that writes them, so weights are read exactly once.
 */
export function openMeasured(entry: ArchiveEntry, onBytes: (n: number) => void): { stream: Readable; result: Promise<FileEntry> } {
  const hash = createHash('sha256');
  let size = 0;
  let settle!: (entry: FileEntry) => void;
  const result = new Promise<FileEntry>((resolve) => (settle = resolve));
  const measure = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      onBytes(chunk.length);
      callback(null, chunk);
    },
    flush(callback) {
      settle({ size, sha256: hash.digest('hex') });
      callback();
    },
  });
  const input: Readable =
    entry.source.kind === 'file' ? createReadStream(entry.source.file, { highWaterMark: CHUNK }) : Readable.from([entry.source.bytes]);
  input.on('error', (error) => measure.destroy(error));
  return { stream: input.pipe(measure), result };
}

/** Everything an archive writer needs besides the entries. */
export interface WriteOptions {
  /** Stored as every entry's modification time. */
  mtime: Date;
  /** Builds the manifest once every file has been measured. */
  manifest: (files: Record<string, FileEntry>) => Buffer;
  onBytes: (n: number) => void;
}
