/**
 * Bucket upper bounds, in seconds, for the server's own duration histograms (kiln_queue_seconds,
 * kiln_batch_seconds): from 100 µs, because a small model's batch takes about a millisecond, to 10 s.
 */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** A Prometheus histogram of durations: a count per bucket (not yet cumulative), the sum and the count. */
export class Durations {
  readonly perBucket: number[] = DURATION_BUCKETS.map(() => 0);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    const i = DURATION_BUCKETS.findIndex((bound) => seconds <= bound);
    // Past the last bound, an observation counts only in +Inf, which is `count`.
    if (i >= 0) this.perBucket[i]!++;
  }

  /** Each bound's count of observations at or below it, as Prometheus reads `_bucket`. */
  cumulative(): number[] {
    let total = 0;
    return this.perBucket.map((n) => (total += n));
  }
}

/** A batch's handler phases, as the worker timed them: kiln_batch_seconds{phase="preprocess"} and so on. */
export class PhaseDurations {
  readonly preprocess = new Durations();
  readonly inference = new Durations();
  readonly postprocess = new Durations();

  observeHandler(ms: { preprocess: number; inference: number; postprocess: number }): void {
    this.preprocess.observe(ms.preprocess / 1000);
    this.inference.observe(ms.inference / 1000);
    this.postprocess.observe(ms.postprocess / 1000);
  }
}
