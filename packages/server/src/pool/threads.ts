import { availableParallelism } from 'node:os';

/**
 * ONNX Runtime intra-op threads for each of a model's workers when its config leaves them out: the
 * cores less one, for the server's own HTTP thread, divided among the workers; at least one.
 *
 * Measured on 2 cores (bench/threads.mjs, docs/guides/performance.md): a ~1 ms model runs in
 * 0.74 ms on one thread and 1.40 ms on two, burning 3.7× the CPU; a ~6 ms one gains from a second
 * thread at concurrency 1 (5.2 against 6.6 ms) but burns 65% more CPU, which the HTTP thread then
 * lacks under load. More workers of one thread each serve more than fewer workers of more threads.
 */
export function defaultIntraOpThreads(workers: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor((cores - 1) / workers));
}
