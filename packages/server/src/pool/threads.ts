import { availableParallelism } from 'node:os';

/**
 * ONNX Runtime intra-op threads for each of a model's workers when its config leaves them out:
 * the cores divided among the workers. See docs/guides/performance.md for the measurements.
 */
export function defaultIntraOpThreads(workers: number): number {
  return Math.max(1, Math.floor(availableParallelism() / workers));
}
