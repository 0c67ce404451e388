import { createHash } from 'node:crypto';
import { MANIFEST_PATH, parseManifest, type Manifest } from '@kiln/handler-sdk/runtime';
import { serverError } from '../errors.js';
import { torchServeArchiveError } from './torchserve-archive.js';
import { walkArchive, type ArchiveFormat } from './walk-archive.js';

export type FileStatus = 'ok' | 'size mismatch' | 'hash mismatch' | 'missing' | 'not in manifest';

export interface VerifiedFile {
  path: string;
  size: number | undefined;
  sha256: string | undefined;
  expected: { size: number; sha256: string } | undefined;
  status: FileStatus;
}

export interface ArchiveReport {
  path: string;
  format: ArchiveFormat;
  manifest: Manifest;
  files: VerifiedFile[];
  ok: boolean;
}

/** The manifest cannot be larger than this; it is read into memory. */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

/**
 * Reads an archive in one pass: hashes every file as it streams by, reads the manifest, then
 * compares. Memory stays flat whatever the size of the weights.
 */
export async function verifyArchive(path: string): Promise<ArchiveReport> {
  const measured = new Map<string, Measured>();
  let manifestBytes: Buffer | undefined;
  const format = await walkArchive(path, async (entry) => {
    const stream = await entry.open();
    if (entry.path === MANIFEST_PATH) manifestBytes = await readManifestBytes(path, stream);
    else measured.set(entry.path, await measure(stream, () => {}));
  });
  return compareWithManifest(path, format, manifestBytes, measured);
}

export interface Measured {
  size: number;
  sha256: string;
}

/** Hashes a stream while passing each chunk to `write`. */
export async function measure(stream: AsyncIterable<unknown>, write: (chunk: Buffer) => void | Promise<void>): Promise<Measured> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    const bytes = chunk as Buffer;
    hash.update(bytes);
    size += bytes.length;
    await write(bytes);
  }
  return { size, sha256: hash.digest('hex') };
}

export async function readManifestBytes(path: string, stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    length += (chunk as Buffer).length;
    if (length > MAX_MANIFEST_BYTES) throw serverError('KILN_ERR_ARCHIVE_UNREADABLE', `${path}: ${MANIFEST_PATH} is larger than 16 MiB`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Parses the manifest and gives every file a status against what was measured. */
export function compareWithManifest(
  path: string,
  format: ArchiveFormat,
  manifestBytes: Buffer | undefined,
  actual: Map<string, Measured>,
): ArchiveReport {
  if (manifestBytes === undefined) {
    throw serverError('KILN_ERR_ARCHIVE_UNREADABLE', `${path} has no ${MANIFEST_PATH}; build archives with kiln archive`, {
      details: { path },
    });
  }
  const torchServe = torchServeArchiveError(path, manifestBytes, actual.keys());
  if (torchServe !== undefined) throw torchServe;
  const manifest = parseManifest(manifestBytes, `${path}: ${MANIFEST_PATH}`);
  const files: VerifiedFile[] = [];
  for (const [file, expected] of Object.entries(manifest.files)) {
    const got = actual.get(file);
    const status: FileStatus =
      got === undefined
        ? 'missing'
        : got.size !== expected.size
          ? 'size mismatch'
          : got.sha256 !== expected.sha256
            ? 'hash mismatch'
            : 'ok';
    files.push({ path: file, size: got?.size, sha256: got?.sha256, expected, status });
  }
  for (const [file, got] of actual) {
    if (!(file in manifest.files))
      files.push({ path: file, size: got.size, sha256: got.sha256, expected: undefined, status: 'not in manifest' });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { path, format, manifest, files, ok: files.every((f) => f.status === 'ok') };
}

/** The error `kiln inspect` and the loader raise for a report that is not ok. */
export function integrityError(report: ArchiveReport) {
  const bad = report.files.filter((f) => f.status !== 'ok');
  const lines = bad.map(
    (f) =>
      `${f.path}: ${f.status}${f.expected && f.sha256 ? ` (manifest ${f.expected.sha256.slice(0, 12)}…, ${f.expected.size} B; archive ${f.sha256.slice(0, 12)}…, ${f.size} B)` : ''}`,
  );
  return serverError(
    'KILN_ERR_ARCHIVE_INTEGRITY',
    `${report.path} does not match its manifest:\n  ${lines.join('\n  ')}\nThe archive was changed after it was built; rebuild it with kiln archive.`,
    { details: { path: report.path, files: bad.map((f) => ({ path: f.path, status: f.status })) } },
  );
}
