import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import ZipStream from 'zip-stream';
import { MANIFEST_PATH, type FileEntry } from '@kiln/handler-sdk/runtime';
import { barelyCompresses } from './compressibility.js';
import { openMeasured, type ArchiveEntry, type WriteOptions } from './entry.js';

/**
 * Writes a zip (.mar) with zip-stream (archiver's engine): timestamps in UTC so builds do not
 * depend on the time zone, and a CRC fast enough that storing 1 GiB of weights is I/O-bound.
 * With `compress`, each entry is deflated unless deflate would barely shrink it (compressibility.ts).
 * Entries are streamed one at a time; the manifest is last, built once every file is hashed.
 */
export async function writeZip(
  target: string,
  entries: readonly ArchiveEntry[],
  options: WriteOptions & { compress: boolean },
): Promise<void> {
  const zip = new ZipStream({ store: !options.compress, zlib: { level: 6 } });
  const written = pipeline(zip, createWriteStream(target));
  written.catch(() => {}); // surfaced by the await below, after the entries
  const add = (source: Buffer | NodeJS.ReadableStream, name: string, store = !options.compress) =>
    new Promise<void>((resolve, reject) => {
      zip.entry(source as Buffer, { name, date: options.mtime, mode: 0o644, store }, (error) => (error ? reject(error) : resolve()));
    });
  const files: Record<string, FileEntry> = {};
  try {
    for (const entry of entries) {
      // Weights that deflate would barely shrink are stored: the server then reads them without inflating.
      const store = !options.compress || (await barelyCompresses(entry));
      const { stream, result } = openMeasured(entry, options.onBytes);
      const failed = new Promise<never>((_, reject) => stream.on('error', reject));
      await Promise.race([add(stream, entry.path, store), failed]);
      files[entry.path] = await result;
    }
    await add(options.manifest(files), MANIFEST_PATH);
    await zip.finalize();
  } catch (error) {
    zip.destroy(error as Error);
    throw error;
  }
  await written;
}
