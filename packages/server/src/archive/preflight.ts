import { stat } from 'node:fs/promises';
import { serverError } from '../errors.js';
import { walkArchive } from './walk-archive.js';

export interface ArchiveLimits {
  maxEntries: number;
  /** Total bytes once unpacked. */
  maxBytes: number;
  /** Unpacked ÷ packed above which a large archive is taken for a compression bomb. */
  maxRatio: number;
}

export const DEFAULT_LIMITS: ArchiveLimits = Object.freeze({
  maxEntries: 10_000,
  maxBytes: 16 * 1024 ** 3,
  maxRatio: 200,
});

/** Below this an archive may compress as well as it likes (a config of zeros is not a bomb). */
const RATIO_FLOOR = 64 * 1024 * 1024;

/**
 * Checks every entry of an archive before a byte is written: names, links and duplicates (by the
 * walker), then the count, the unpacked total and the compression ratio. For a zip only the
 * central directory is read; a .tar.gz is decompressed and discarded, stopping at the limits.
 */
export async function preflight(path: string, limits: ArchiveLimits = DEFAULT_LIMITS): Promise<void> {
  const stats = await stat(path).catch(() => undefined);
  if (stats === undefined) throw serverError('KILN_ERR_ARCHIVE_UNREADABLE', `${path}: no such file or folder`, { details: { path } });
  const packed = stats.isDirectory() ? undefined : stats.size;
  let entries = 0;
  let declared = 0;
  const check = (entryPath: string) => {
    if (entries > limits.maxEntries) {
      throw limit(path, `it has more than ${limits.maxEntries} entries`);
    }
    if (declared > limits.maxBytes) {
      throw limit(path, `it unpacks to more than ${limits.maxBytes} bytes (at "${entryPath}")`);
    }
    if (packed !== undefined && declared > RATIO_FLOOR && declared / Math.max(1, packed) > limits.maxRatio) {
      throw limit(path, `it unpacks to ${declared} bytes from ${packed}, more than ${limits.maxRatio}× (a compression bomb?)`);
    }
  };
  await walkArchive(path, async (entry) => {
    entries++;
    declared += entry.size;
    check(entry.path);
    if (entry.streamed) {
      // A tar entry's size is in its header, but the gzip around it can still lie: count real bytes.
      const stream = await entry.open();
      let seen = 0;
      for await (const chunk of stream) {
        seen += (chunk as Buffer).length;
        if (seen > entry.size) throw limit(path, `entry "${entry.path}" holds more than the ${entry.size} bytes it declares`);
      }
    }
  });
}

function limit(path: string, why: string) {
  return serverError('KILN_ERR_ARCHIVE_LIMIT', `${path} is refused: ${why}; rebuild it with kiln archive`, { details: { path } });
}
