import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { MANIFEST_PATH } from '@kiln/handler-sdk/runtime';
import { serverError } from '../errors.js';
import { compareWithManifest, integrityError, measure, readManifestBytes, type ArchiveReport, type Measured } from './verify-archive.js';
import { DEFAULT_LIMITS, preflight, type ArchiveLimits } from './preflight.js';
import { walkArchive } from './walk-archive.js';

/** Bytes a file write may buffer before it waits for a drain: whole 1 MiB reads pass straight on. */
const WRITE_BUFFER_BYTES = 8 * 1024 * 1024;

/**
 * Unpacks an archive (zip, tgz or folder) into `dest`, which must not exist, checking each entry
 * before writing it and every hash after. On any failure `dest` is removed: nothing is left behind.
 * An entry that outgrows the size it declared is cut off mid-stream. An abort `signal` (the server
 * stopping) ends the unpacking at the next entry or chunk, with the signal's reason.
 */
export async function extractArchive(
  path: string,
  dest: string,
  limits: ArchiveLimits = DEFAULT_LIMITS,
  signal?: AbortSignal,
): Promise<ArchiveReport> {
  await preflight(path, limits);
  signal?.throwIfAborted();
  await mkdir(dirname(dest), { recursive: true });
  await mkdir(dest); // fails if it exists: never write into someone else's folder
  try {
    const measured = new Map<string, Measured>();
    let manifestBytes: Buffer | undefined;
    const format = await walkArchive(path, async (entry) => {
      signal?.throwIfAborted();
      const stream = await entry.open();
      if (entry.path === MANIFEST_PATH) manifestBytes = await readManifestBytes(path, stream);
      const target = join(dest, ...entry.path.split('/'));
      await mkdir(dirname(target), { recursive: true });
      const out = createWriteStream(target, { flags: 'wx', mode: 0o644, highWaterMark: WRITE_BUFFER_BYTES });
      let written = 0;
      const source: AsyncIterable<unknown> =
        entry.path === MANIFEST_PATH
          ? (async function* () {
              yield manifestBytes;
            })()
          : stream;
      const result = await measure(source, async (chunk) => {
        signal?.throwIfAborted();
        written += chunk.length;
        if (written > entry.size) {
          throw serverError(
            'KILN_ERR_ARCHIVE_UNSAFE_ENTRY',
            `${path}: entry "${entry.path}" holds more than the ${entry.size} bytes it declares`,
            {
              details: { archive: path, entry: entry.path },
            },
          );
        }
        if (!out.write(chunk)) await once(out, 'drain');
      }).finally(() => out.end());
      await once(out, 'close');
      if (entry.path !== MANIFEST_PATH) measured.set(entry.path, result);
    });
    const report = compareWithManifest(path, format, manifestBytes, measured);
    if (!report.ok) throw integrityError(report);
    return report;
  } catch (error) {
    await rm(dest, { recursive: true, force: true });
    throw error;
  }
}
