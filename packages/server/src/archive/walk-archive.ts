import { createReadStream, type Stats } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import yauzl from 'yauzl';
import { archivePathProblem } from '@kiln/handler-sdk/runtime';
import { serverError } from '../errors.js';

export type ArchiveFormat = 'zip' | 'tgz' | 'directory';

/** One regular file in an archive; `open` may be called once, before the visitor resolves. */
export interface ArchiveFileEntry {
  path: string;
  /** The size the archive declares (zip, tar) or the file has (directory). */
  size: number;
  open: () => Promise<Readable>;
  /** True when the bytes can only be had by reading past them (tar): skipping costs a read. */
  streamed?: boolean;
}

export type EntryVisitor = (entry: ArchiveFileEntry) => Promise<void>;

/** Tells the format from the first bytes: zip `PK`, gzip 1f 8b, or a folder. */
export async function detectFormat(path: string): Promise<ArchiveFormat> {
  let stats: Stats;
  try {
    stats = await lstat(path);
  } catch {
    throw serverError('KILN_ERR_ARCHIVE_UNREADABLE', `${path}: no such file or folder`, { details: { path } });
  }
  if (stats.isDirectory()) return 'directory';
  const handle = await open(path, 'r');
  const head = Buffer.alloc(4);
  try {
    await handle.read(head, 0, 4, 0);
  } finally {
    await handle.close();
  }
  if (head[0] === 0x50 && head[1] === 0x4b) return 'zip';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'tgz';
  throw serverError('KILN_ERR_ARCHIVE_UNREADABLE', `${path} is neither a zip (.mar), a .tar.gz nor a folder; build it with kiln archive`, {
    details: { path },
  });
}

/**
 * Visits every regular file of an archive in the archive's own order, after checking its path.
 * Links, unsafe paths and duplicates are refused before their bytes are read.
 */
export async function walkArchive(path: string, visit: EntryVisitor): Promise<ArchiveFormat> {
  const format = await detectFormat(path);
  const seen = new Set<string>();
  const checked: EntryVisitor = async (entry) => {
    const problem = archivePathProblem(entry.path);
    if (problem !== undefined) throw unsafe(path, entry.path, problem);
    if (seen.has(entry.path)) throw unsafe(path, entry.path, 'it appears twice');
    seen.add(entry.path);
    return visit(entry);
  };
  try {
    if (format === 'zip') await walkZip(path, checked);
    else if (format === 'tgz') await walkTgz(path, checked);
    else await walkDirectory(path, '', checked);
  } catch (error) {
    if ((error as { code?: string }).code?.startsWith('KILN_ERR_')) throw error;
    throw serverError('KILN_ERR_ARCHIVE_UNREADABLE', `${path} is not a readable ${format} archive: ${(error as Error).message}`, {
      cause: error,
      details: { path, format },
    });
  }
  return format;
}

export function unsafe(archive: string, entry: string, why: string) {
  return serverError('KILN_ERR_ARCHIVE_UNSAFE_ENTRY', `${archive}: entry "${entry}" is refused: ${why}`, {
    details: { archive, entry },
  });
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** How much one read of a zip takes: yauzl's own reader reads 64 KiB at a time. */
const ZIP_READ_BYTES = 1024 * 1024;

/**
 * yauzl's reader for a file, reading 1 MiB at a time. With yauzl's default reads a 14 MB model
 * went through a chain of four streams in 855 pieces and took twice as long to unpack.
 */
class FileReader extends yauzl.RandomAccessReader {
  constructor(private readonly path: string) {
    super();
  }

  // Each range opens the file on its own: yauzl destroys streams it is done with, and a stream
  // destroyed closes its descriptor whatever autoClose says.
  override _readStreamForRange(start: number, end: number): Readable {
    return createReadStream(this.path, { start, end: end - 1, highWaterMark: ZIP_READ_BYTES });
  }
}

async function walkZip(path: string, visit: EntryVisitor): Promise<void> {
  const { size } = await lstat(path);
  return new Promise((resolve, reject) => {
    // decodeStrings: false, so that names are decoded here and checked by Kiln's own rules
    // (yauzl would reject some unsafe names itself, but as a generic read error).
    yauzl.fromRandomAccessReader(
      new FileReader(path),
      size,
      { lazyEntries: true, autoClose: true, decodeStrings: false, validateEntrySizes: true },
      (error, zip) => {
        if (error) return reject(error);
        zip.on('error', reject);
        zip.on('end', () => resolve());
        zip.on('entry', (entry: yauzl.Entry) => {
          const raw = entry.fileName as unknown as Buffer;
          const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, raw, entry.extraFields, true);
          const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
          if (name.endsWith('/') && entry.uncompressedSize === 0) return zip.readEntry();
          if (mode !== 0 && mode !== S_IFREG) {
            zip.close();
            return reject(unsafe(path, name, 'it is a link or special file, not a regular file'));
          }
          if (entry.isEncrypted()) {
            zip.close();
            return reject(
              serverError('KILN_ERR_ARCHIVE_UNREADABLE', `${path}: entry "${name}" is encrypted; Kiln reads only unencrypted archives`, {
                details: { archive: path, entry: name },
              }),
            );
          }
          const open = () =>
            new Promise<Readable>((res, rej) =>
              zip.openReadStream(entry, (e, stream) => {
                if (e) return rej(e);
                // A reader that stops early (a size guard) leaves yauzl's checks to fail later; the
                // reader has seen the error already, so a late one must not crash the process.
                stream.on('error', () => {});
                res(stream);
              }),
            );
          visit({ path: name, size: entry.uncompressedSize, open }).then(
            () => zip.readEntry(),
            (e: unknown) => {
              zip.close();
              const message = (e as Error).message ?? String(e);
              // yauzl checks each entry's real size against the one it declares.
              reject(
                /bytes in the stream/.test(message) ? unsafe(path, name, `its data does not match the size it declares (${message})`) : e,
              );
            },
          );
        });
        zip.readEntry();
      },
    );
  });
}

async function walkTgz(path: string, visit: EntryVisitor): Promise<void> {
  const extract = tar.extract();
  const done = pipeline(createReadStream(path), createGunzip(), extract);
  done.catch(() => {}); // a failure also ends the loop below, which rethrows it
  for await (const entry of extract) {
    const header = entry.header;
    // torch-model-archiver's tgz puts everything under `<model-name>/`; strip that first segment.
    const name = header.name
      .replace(/^\.?\//, '')
      .split('/')
      .slice(1)
      .join('/');
    if (header.type === 'directory' || name === '' || name.endsWith('/')) {
      entry.resume();
      continue;
    }
    if (header.type !== 'file' && header.type !== 'contiguous-file') {
      entry.resume();
      throw unsafe(path, header.name, `it is a ${header.type ?? 'special'} entry, not a regular file`);
    }
    let opened = false;
    await visit({
      path: name,
      size: header.size ?? 0,
      streamed: true,
      open: async () => {
        opened = true;
        return entry as unknown as Readable; // a streamx Readable: async-iterable and pipeable
      },
    });
    if (!opened) entry.resume();
  }
  await done;
}

async function walkDirectory(root: string, prefix: string, visit: EntryVisitor): Promise<void> {
  const names = (await readdir(join(root, prefix))).sort();
  for (const name of names) {
    const rel = prefix === '' ? name : `${prefix}/${name}`;
    const stats = await lstat(join(root, rel));
    if (stats.isDirectory()) await walkDirectory(root, rel, visit);
    else if (stats.isFile()) await visit({ path: rel, size: stats.size, open: async () => createReadStream(join(root, rel)) });
    else throw unsafe(root, rel, 'it is a link or special file, not a regular file');
  }
}
