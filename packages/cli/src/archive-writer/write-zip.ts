import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import { MANIFEST_PATH, type FileEntry } from '@kiln/handler-sdk';
import { entrySize, openMeasured, type ArchiveEntry, type WriteOptions } from './entry.js';

const FILE_MODE = 0o100644;

/**
 * Writes a zip (.mar). Entries are streamed one at a time in the given order; the manifest is
 * the last entry, built after every other file has been hashed.
 */
export async function writeZip(
  target: string,
  entries: readonly ArchiveEntry[],
  options: WriteOptions & { compress: boolean },
): Promise<void> {
  const zip = new yazl.ZipFile();
  const files: Record<string, FileEntry> = {};
  const measured: Promise<unknown>[] = [];
  const common = { mtime: options.mtime, mode: FILE_MODE, compress: options.compress };
  for (const entry of entries) {
    zip.addReadStreamLazy(entry.path, { ...common, size: entrySize(entry) }, (callback) => {
      const { stream, result } = openMeasured(entry, options.onBytes);
      measured.push(result.then((file) => (files[entry.path] = file)));
      callback(null, stream);
    });
  }
  // yazl asks for a lazy entry's stream only after the previous entries are fully written.
  zip.addReadStreamLazy(MANIFEST_PATH, common, (callback) => {
    Promise.all(measured).then(
      () => callback(null, Readable.from([options.manifest(files)])),
      (error: unknown) => callback(error as Error, undefined as never),
    );
  });
  zip.end();
  const failed = new Promise<never>((_, reject) => zip.on('error', reject));
  await Promise.race([pipeline(zip.outputStream, createWriteStream(target)), failed]);
}
