import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { MANIFEST_PATH, type FileEntry } from '@kiln/handler-sdk/runtime';
import { entrySize, openMeasured, type ArchiveEntry, type WriteOptions } from './entry.js';

/**
 * Writes `<name>.tar.gz` with every entry under `<name>/`, as torch-model-archiver's tgz format
 * does. Owner ids and names are zeroed so builds do not depend on who ran them.
 */
export async function writeTgz(target: string, entries: readonly ArchiveEntry[], options: WriteOptions & { root: string }): Promise<void> {
  const pack = tar.pack();
  const written = pipeline(pack, createGzip({ level: 6 }), createWriteStream(target));
  const header = (name: string, size: number) => ({
    name: `${options.root}/${name}`,
    size,
    mode: 0o644,
    mtime: options.mtime,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    type: 'file' as const,
  });
  const files: Record<string, FileEntry> = {};
  try {
    for (const entry of entries) {
      const { stream, result } = openMeasured(entry, options.onBytes);
      await new Promise<void>((resolve, reject) => {
        const sink = pack.entry(header(entry.path, entrySize(entry)), (error) => (error ? reject(error) : resolve()));
        stream.on('error', reject);
        stream.pipe(sink);
      });
      files[entry.path] = await result;
    }
    const manifest = options.manifest(files);
    pack.entry(header(MANIFEST_PATH, manifest.length), manifest);
    pack.finalize();
  } catch (error) {
    pack.destroy(error as Error);
  }
  await written;
}
