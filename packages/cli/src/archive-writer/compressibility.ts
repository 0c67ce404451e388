import { open } from 'node:fs/promises';
import { deflateRawSync } from 'node:zlib';
import { entrySize, type ArchiveEntry } from './entry.js';

/*
 * Whether deflate is worth it for one entry. Model weights barely compress (float tensors deflate
 * by about a tenth) and inflating them is what the server waits for before a worker can open its
 * session: a 14 MB conv net's archive took ~290 ms to unpack deflated and ~90 ms stored, the first
 * time in a process. So an entry that deflate would shrink by less than a fifth is stored as it
 * is; configs, vocabularies and code, which shrink by half or more, are deflated.
 */

/** Below this an entry is always deflated: too small for either choice to matter. */
const SMALL = 64 * 1024;
/** Three samples this long, from the start, the middle and the end of the entry. */
const SAMPLE = 256 * 1024;
/** Stored when deflate keeps more than this share of the sampled bytes. */
const STORE_ABOVE = 0.8;

/** True when the entry should be stored: deflate would save less than a fifth of it (sampled, deterministic). */
export async function barelyCompresses(entry: ArchiveEntry): Promise<boolean> {
  const size = entrySize(entry);
  if (size < SMALL) return false;
  const sample = await readSamples(entry, size);
  return deflateRawSync(sample, { level: 6 }).length > STORE_ABOVE * sample.length;
}

async function readSamples(entry: ArchiveEntry, size: number): Promise<Buffer> {
  const length = Math.min(SAMPLE, Math.floor(size / 3));
  const offsets = [0, Math.floor((size - length) / 2), size - length];
  if (entry.source.kind === 'bytes') {
    const { bytes } = entry.source;
    return Buffer.concat(offsets.map((at) => bytes.subarray(at, at + length)));
  }
  const file = await open(entry.source.file, 'r');
  try {
    const sample = Buffer.allocUnsafe(length * offsets.length);
    for (const [i, at] of offsets.entries()) await file.read(sample, i * length, length, at);
    return sample;
  } finally {
    await file.close();
  }
}
