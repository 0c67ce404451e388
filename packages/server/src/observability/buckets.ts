/**
 * Default upper bounds, in seconds, of the server's duration histograms (kiln_request_seconds,
 * kiln_queue_seconds, kiln_batch_seconds): from 100 µs, because a small model's batch takes about
 * a millisecond, to 10 s. `--latency-buckets` replaces them.
 */
export const DEFAULT_LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** Default upper bounds of kiln_batch_size: powers of two up to 256. `--batch-size-buckets` replaces them. */
export const DEFAULT_BATCH_SIZE_BUCKETS: readonly number[] = Object.freeze([1, 2, 4, 8, 16, 32, 64, 128, 256]);
