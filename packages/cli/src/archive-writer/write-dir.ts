import { createWriteStream } from 'node:fs';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { MANIFEST_PATH, type FileEntry } from '@kiln/handler-sdk/runtime';
import { openMeasured, type ArchiveEntry, type WriteOptions } from './entry.js';

/** Writes the archive as a plain folder (`no-archive`), manifest last. */
export async function writeDir(target: string, entries: readonly ArchiveEntry[], options: WriteOptions): Promise<void> {
  const files: Record<string, FileEntry> = {};
  await mkdir(target, { recursive: true });
  for (const entry of entries) {
    const file = join(target, ...entry.path.split('/'));
    await mkdir(dirname(file), { recursive: true });
    const { stream, result } = openMeasured(entry, options.onBytes);
    await pipeline(stream, createWriteStream(file, { mode: 0o644 }));
    await utimes(file, options.mtime, options.mtime);
    files[entry.path] = await result;
  }
  const manifestFile = join(target, ...MANIFEST_PATH.split('/'));
  await mkdir(dirname(manifestFile), { recursive: true });
  await writeFile(manifestFile, options.manifest(files), { mode: 0o644 });
  await utimes(manifestFile, options.mtime, options.mtime);
}
