import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, posix, relative, resolve } from 'node:path';
import { MANIFEST_PATH, isSafeArchivePath, parseModelConfig, type Signature } from '@kiln/handler-sdk/runtime';
import { cliError } from '../../errors.js';
import { statOrThrow } from '../../util/files.js';
import type { ArchiveEntry } from '../../archive-writer/entry.js';
import { NotAModelError, readOnnxModel } from '../../onnx/read-signature.js';

/** Folders torch-model-archiver also leaves out of --extra-files. */
const SKIPPED_NAMES = new Set(['__MACOSX', '__pycache__']);

function fileEntry(path: string, file: string, size: number, origin: string): ArchiveEntry {
  return { path, origin, source: { kind: 'file', file, size } };
}

/** The ONNX file, its signature, and the external-data files it references. */
export function collectModel(value: string, cwd: string): { entries: ArchiveEntry[]; signature: Signature; serializedFile: string } {
  const file = resolve(cwd, value);
  const stats = statOrThrow(file, '--serialized-file', cwd);
  if (!stats.isFile()) throw notAModel(value, 'it is a folder, not a file');
  let info;
  try {
    info = readOnnxModel(file);
  } catch (error) {
    if (error instanceof NotAModelError) throw notAModel(value, error.message);
    throw error;
  }
  const serializedFile = basename(file);
  const entries = [fileEntry(serializedFile, file, stats.size, `--serialized-file ${value}`)];
  const seen = new Set<string>();
  for (const external of info.externalData) {
    const location = posix.normalize(external.location.replace(/\\/g, '/'));
    if (!isSafeArchivePath(location)) {
      throw externalProblem(
        value,
        `initializer "${external.tensor}" stores its data at "${external.location}", outside the model's folder; keep external data beside the model or below it`,
      );
    }
    const dataFile = join(dirname(file), ...location.split('/'));
    let dataStats;
    try {
      dataStats = statSync(dataFile);
    } catch {
      throw externalProblem(
        value,
        `initializer "${external.tensor}" stores its data in "${location}", which does not exist next to the model; keep the external-data files beside the .onnx file`,
      );
    }
    if (
      !Number.isSafeInteger(external.offset) ||
      external.offset < 0 ||
      (external.length !== undefined && !(Number.isSafeInteger(external.length) && external.length >= 0))
    ) {
      throw externalProblem(value, `initializer "${external.tensor}" has a malformed external-data offset or length`);
    }
    const end = external.offset + (external.length ?? 0);
    if (end > dataStats.size) {
      throw externalProblem(
        value,
        `initializer "${external.tensor}" needs bytes up to ${end} of "${location}", which has only ${dataStats.size}; the external-data file is truncated or stale: export the model again`,
      );
    }
    if (!seen.has(location)) {
      seen.add(location);
      entries.push(fileEntry(location, dataFile, dataStats.size, `external data of ${serializedFile}`));
    }
  }
  return { entries, signature: info.signature, serializedFile };
}

function externalProblem(value: string, why: string) {
  return cliError('KILN_ERR_NOT_ONNX_MODEL', `--serialized-file ${value}: ${why}`, { details: { path: value, reason: why } });
}

function notAModel(value: string, why: string) {
  return cliError(
    'KILN_ERR_NOT_ONNX_MODEL',
    `--serialized-file ${value} is not a usable ONNX model: ${why}. Export the model to ONNX (e.g. torch.onnx.export) and pass the .onnx file`,
    {
      details: { path: value, reason: why },
    },
  );
}

/** The model config, validated before anything is written. */
export function collectConfig(value: string, cwd: string): ArchiveEntry {
  const file = resolve(cwd, value);
  const stats = statOrThrow(file, '--config-file', cwd);
  const text = readFileSync(file, 'utf8');
  parseModelConfig(text, relative(cwd, file) || value);
  return fileEntry(basename(file), file, stats.size, `--config-file ${value}`);
}

/** Files go to the root under their own name; a folder's contents go to the root, recursively. */
export function collectExtraFiles(value: string, cwd: string): ArchiveEntry[] {
  const entries: ArchiveEntry[] = [];
  for (const item of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const file = resolve(cwd, item);
    const stats = statOrThrow(file, '--extra-files', cwd);
    if (stats.isDirectory()) walk(file, '', `--extra-files ${item}`, entries);
    else entries.push(fileEntry(basename(file), file, stats.size, `--extra-files ${item}`));
  }
  return entries;
}

function walk(dir: string, prefix: string, origin: string, out: ArchiveEntry[]): void {
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.') || SKIPPED_NAMES.has(name)) continue;
    const file = join(dir, name);
    const stats = statSync(file); // follows links: the archive stores their contents as plain files
    const path = prefix === '' ? name : `${prefix}/${name}`;
    if (stats.isDirectory()) walk(file, path, origin, out);
    else if (stats.isFile()) out.push(fileEntry(path, file, stats.size, origin));
  }
}

/** Sorts entries by path (code-unit order: stable across machines) and refuses two at one path. */
export function orderEntries(entries: ArchiveEntry[]): ArchiveEntry[] {
  const byPath = new Map<string, ArchiveEntry>();
  for (const entry of entries) {
    if (entry.path === MANIFEST_PATH || entry.path.startsWith('MAR-INF/')) {
      throw cliError(
        'KILN_ERR_ARCHIVE_PATH_CONFLICT',
        `${entry.origin} would be stored at ${entry.path}, but MAR-INF/ is reserved for the manifest; rename the file or folder`,
        {
          details: { path: entry.path },
        },
      );
    }
    const other = byPath.get(entry.path);
    if (other !== undefined) {
      throw cliError(
        'KILN_ERR_ARCHIVE_PATH_CONFLICT',
        `${entry.origin} and ${other.origin} would both be stored at "${entry.path}"; rename one of them`,
        {
          details: { path: entry.path, origins: [other.origin, entry.origin] },
        },
      );
    }
    byPath.set(entry.path, entry);
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
