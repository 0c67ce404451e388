import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { detectFormat, serverError, walkArchive, type ArchiveFormat } from '@kiln/server';

/** Files read into memory as the model is listed: sources, configs, the manifest. Weights are only copied. */
const TEXT_FILE = /\.(py|ya?ml|json|txt)$/;
const MAX_TEXT_BYTES = 4 * 1024 * 1024;
/** Left out of a folder, as torch-model-archiver leaves them out of --extra-files. */
const SKIPPED_NAMES = new Set(['__pycache__', '__MACOSX', 'node_modules']);

/**
 * The files of a TorchServe model: a .mar (zip), a .tar.gz, or a folder. The list is read first,
 * with the small text files; `copy` then writes each file where the migration puts it, streaming
 * the weights straight from the archive (no staging copy).
 */
export interface ModelFiles {
  format: ArchiveFormat;
  /** Relative POSIX paths, sorted. */
  paths: string[];
  /** The text of a source, config or manifest file (undefined for weights and large files). */
  text(path: string): string | undefined;
  /** Writes every file `destination` maps to a path; files it maps to undefined are skipped. */
  copy(destination: (path: string) => string | undefined): Promise<void>;
}

/** Lists a model and reads its text files. */
export async function readModelFiles(input: string): Promise<ModelFiles> {
  const format = await detectFormat(input).catch((error: unknown) => {
    throw serverError('KILN_ERR_ARCHIVE_UNREADABLE', `${input} is neither a TorchServe .mar (a zip), a .tar.gz nor a model folder`, {
      cause: error,
      details: { path: input },
    });
  });
  return format === 'directory' ? readFolder(input) : readArchive(input, format);
}

async function readArchive(input: string, format: ArchiveFormat): Promise<ModelFiles> {
  const texts = new Map<string, string>();
  const paths: string[] = [];
  await walkArchive(input, async (entry) => {
    paths.push(entry.path);
    if (TEXT_FILE.test(entry.path) && entry.size <= MAX_TEXT_BYTES)
      texts.set(entry.path, (await readAll(await entry.open())).toString('utf8'));
  });
  return {
    format,
    paths: paths.sort(),
    text: (path) => texts.get(path),
    copy: async (destination) => {
      await walkArchive(input, async (entry) => {
        const target = destination(entry.path);
        if (target === undefined) return;
        await mkdir(dirname(target), { recursive: true });
        await pipeline(await entry.open(), createWriteStream(target));
      });
    },
  };
}

async function readFolder(root: string): Promise<ModelFiles> {
  const texts = new Map<string, string>();
  const paths: string[] = [];
  const walk = async (prefix: string): Promise<void> => {
    for (const name of (await readdir(join(root, prefix))).sort()) {
      if (name.startsWith('.') || SKIPPED_NAMES.has(name)) continue;
      const file = join(root, prefix, name);
      const path = prefix === '' ? name : `${prefix}/${name}`;
      const stats = await stat(file); // follows links, as torch-model-archiver's copy does
      if (stats.isDirectory()) await walk(path);
      else if (stats.isFile()) {
        paths.push(path);
        if (TEXT_FILE.test(path) && stats.size <= MAX_TEXT_BYTES) texts.set(path, await readFile(file, 'utf8'));
      }
    }
  };
  await walk('');
  return {
    format: 'directory',
    paths: paths.sort(),
    text: (path) => texts.get(path),
    copy: async (destination) => {
      for (const path of paths) {
        const target = destination(path);
        if (target === undefined) continue;
        await mkdir(dirname(target), { recursive: true });
        await copyFile(join(root, ...path.split('/')), target);
      }
    },
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
