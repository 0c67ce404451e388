import type { LatencySummary } from './report-types.js';

/** Latencies in milliseconds, in storage that grows as answers come: no array of boxed numbers. */
export class Samples {
  private data = new Float64Array(1 << 14);
  length = 0;

  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }

  /** Mean, nearest-rank p50, p90 and p99, and max; null when there are none. */
  summary(): LatencySummary | null {
    if (this.length === 0) return null;
    const sorted = this.data.slice(0, this.length).sort();
    let sum = 0;
    for (const value of sorted) sum += value;
    return {
      mean: sum / sorted.length,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sorted.at(-1)!,
    };
  }
}

/** The nearest-rank percentile of ascending values: the smallest value with at least p% of them at or below it. */
export function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
