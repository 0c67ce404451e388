/* Numbers and counts, formatted the same way in report.md, report.html and the terminal. */
import type { LevelResult } from './report-types.js';

export const DASH = '—';

// Numbers, formatted the same way in all three outputs. Anything not finite prints as a dash.

export function fixed(value: number | null | undefined, digits: number): string {
  return value == null || !Number.isFinite(value) ? DASH : value.toFixed(digits);
}

/** Two decimals below 10 ms and one above, so every latency keeps about three significant figures. */
export function ms(value: number | null | undefined): string {
  return value == null ? DASH : fixed(value, Math.abs(value) < 10 ? 2 : 1);
}

/** Requests per batch; none when there were no batches to average over. */
export function meanBatch(level: LevelResult): number | null {
  return level.server === null || level.server.batches === 0 ? null : level.server.meanBatchSize;
}

export function errorCount(level: LevelResult): number {
  return Object.values(level.errors).reduce((sum, n) => sum + n, 0);
}

/** `503×3, timeout×1`, most frequent first; `0` when nothing failed. */
export function errorsText(errors: Record<string, number>): string {
  const entries = Object.entries(errors)
    .filter(([, n]) => n > 0)
    .sort(([a, m], [b, n]) => n - m || a.localeCompare(b));
  return entries.length === 0 ? '0' : entries.map(([key, n]) => `${key}×${n}`).join(', ');
}

export function bySize(a: string, b: string): number {
  return Number(a) - Number(b) || a.localeCompare(b);
}

/** Batch sizes that occurred, smallest first. */
export function sizeEntries(batchSizes: Record<string, number>): [size: string, count: number][] {
  return Object.entries(batchSizes)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => bySize(a, b));
}

/** `1×120, 8×40`: batches by size. */
export function sizesText(batchSizes: Record<string, number>): string {
  const entries = sizeEntries(batchSizes);
  return entries.length === 0 ? DASH : entries.map(([size, n]) => `${size}×${n}`).join(', ');
}
