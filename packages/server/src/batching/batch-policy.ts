/**
 * When to send a batch (DESIGN decision 4), as a pure function so it can be tested without timers.
 * A batch goes as soon as a worker is free and either `batchSize` requests wait, or the oldest has
 * waited `maxBatchDelayMs` since it ARRIVED (not since a worker started looking). With
 * batchSize 1 a request never waits.
 */
export interface PolicyState {
  waiting: number;
  /** Arrival time of the oldest waiting request (ms). */
  oldestArrival: number | undefined;
  now: number;
  freeWorkers: number;
  batchSize: number;
  maxBatchDelayMs: number;
}

export type Decision = { kind: 'dispatch'; size: number } | { kind: 'wait'; until: number } | { kind: 'idle' };

export function decide(state: PolicyState): Decision {
  if (state.waiting === 0 || state.oldestArrival === undefined) return { kind: 'idle' };
  if (state.freeWorkers === 0) return { kind: 'idle' }; // a worker coming free asks again
  if (state.waiting >= state.batchSize) return { kind: 'dispatch', size: state.batchSize };
  const deadline = state.oldestArrival + state.maxBatchDelayMs;
  if (state.now >= deadline) return { kind: 'dispatch', size: state.waiting };
  return { kind: 'wait', until: deadline };
}
