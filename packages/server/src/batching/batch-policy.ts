/**
 * When to send a batch (DESIGN decision 4), as a pure function so it can be tested without timers.
 * A batch goes as soon as a worker is free and either `batchSize` requests wait, or the oldest has
 * waited `maxBatchDelayMs` since it ARRIVED (not since a worker started looking). With
 * batchSize 1 a request never waits.
 *
 * With `maxBatchDelayMs: 'auto'` the wait is not fixed: a request is held only while holding is
 * expected to pay off (decideAuto).
 */
export interface PolicyState {
  waiting: number;
  /** Arrival time of the oldest waiting request (ms). */
  oldestArrival: number | undefined;
  now: number;
  freeWorkers: number;
  batchSize: number;
  maxBatchDelayMs: number | 'auto';
  /** What `auto` decides from; ignored otherwise. */
  auto?: AutoState;
}

export interface AutoState {
  /** The learned cost of running a batch of n: cost(n) ≈ a·n + b ms (see BatchCostModel); undefined until learned. */
  cost: { a: number; b: number } | undefined;
  /** The recent mean time between arrivals (ms); undefined until two requests have arrived. */
  meanGapMs: number | undefined;
  /** The longest any request may be held for its batch (ms); undefined: bounded by the learned cost alone. */
  maxLatencyMs: number | undefined;
}

export type Decision = { kind: 'dispatch'; size: number } | { kind: 'wait'; until: number } | { kind: 'idle' };

export function decide(state: PolicyState): Decision {
  if (state.waiting === 0 || state.oldestArrival === undefined) return { kind: 'idle' };
  if (state.freeWorkers === 0) return { kind: 'idle' }; // a worker coming free asks again
  if (state.waiting >= state.batchSize) return { kind: 'dispatch', size: state.batchSize };
  if (state.maxBatchDelayMs === 'auto') return decideAuto(state.oldestArrival, state.now, state.waiting, state.auto);
  const deadline = state.oldestArrival + state.maxBatchDelayMs;
  if (state.now >= deadline) return { kind: 'dispatch', size: state.waiting };
  return { kind: 'wait', until: deadline };
}

/**
 * `auto`, with a worker free and fewer than batchSize waiting. A request that joins a batch instead
 * of running in its own saves the batch's fixed cost `b`; holding the ones waiting costs them the
 * wait. So hold only when the next request is expected sooner than `b` (the mean gap between
 * arrivals is below it), and never longer than `b` (or `maxLatencyMs`) since the oldest arrived.
 * A lone request at c=1 arrives a whole round trip after the previous one, longer than any batch
 * costs: it is never held. Until the cost and the arrival rate are known, nothing is held.
 */
function decideAuto(oldestArrival: number, now: number, waiting: number, auto: AutoState | undefined): Decision {
  const dispatch: Decision = { kind: 'dispatch', size: waiting };
  if (auto?.cost === undefined || auto.meanGapMs === undefined) return dispatch;
  const { b } = auto.cost;
  if (auto.meanGapMs >= b) return dispatch;
  const deadline = oldestArrival + Math.min(b, auto.maxLatencyMs ?? Infinity);
  return now >= deadline ? dispatch : { kind: 'wait', until: deadline };
}

/**
 * cost(n) ≈ a·n + b, fitted by least squares over recent batches (each weighted less as newer ones
 * arrive, so the fit follows a model whose cost changes). While every batch seen had the same size
 * the slope cannot be told apart: all the cost is taken as fixed (a = 0, b = the mean), the cautious
 * reading for `auto`, which then holds only when arrivals come faster than a whole batch runs.
 */
export class BatchCostModel {
  private w = 0;
  private n = 0;
  private t = 0;
  private nn = 0;
  private nt = 0;

  /** `decay`: how much each older batch's weight is kept at every new one (0.95: the last ~20 count most). */
  constructor(private readonly decay = 0.95) {}

  observe(size: number, ms: number): void {
    const d = this.decay;
    this.w = this.w * d + 1;
    this.n = this.n * d + size;
    this.t = this.t * d + ms;
    this.nn = this.nn * d + size * size;
    this.nt = this.nt * d + size * ms;
  }

  estimate(): { a: number; b: number } | undefined {
    if (this.w === 0) return undefined;
    const meanN = this.n / this.w;
    const meanT = this.t / this.w;
    const variance = this.nn / this.w - meanN * meanN;
    if (variance < 1e-6) return { a: 0, b: Math.max(0, meanT) };
    const a = Math.max(0, (this.nt / this.w - meanN * meanT) / variance);
    return { a, b: Math.max(0, meanT - a * meanN) };
  }
}

/** The recent mean gap between arrivals (ms): an exponentially weighted average. */
export class ArrivalGaps {
  private last: number | undefined;
  private mean: number | undefined;

  constructor(private readonly weight = 0.2) {}

  arrived(at: number): void {
    if (this.last !== undefined) {
      const gap = Math.max(0, at - this.last);
      this.mean = this.mean === undefined ? gap : this.mean + this.weight * (gap - this.mean);
    }
    this.last = at;
  }

  get meanMs(): number | undefined {
    return this.mean;
  }
}
