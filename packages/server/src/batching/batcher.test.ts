import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { Result, WireRequest } from '@kiln/handler-sdk/runtime';
import { ArrivalGaps, BatchCostModel, decide } from './batch-policy.js';
import { Batcher, type BatchObserver, type BatchRunner, type RequestTrace } from './batcher.js';

/** A pool of `workers` that records batch sizes and answers when the test says so. */
class FakePool implements BatchRunner {
  busy = 0;
  sizes: number[] = [];
  private pending: (() => void)[] = [];
  constructor(
    public workers: number,
    private onFree: () => void = () => {},
  ) {}
  freeWorkers() {
    return this.workers - this.busy;
  }
  run(batch: WireRequest[]): Promise<Result[]> {
    this.busy++;
    this.sizes.push(batch.length);
    return new Promise((resolve) => {
      this.pending.push(() => {
        this.busy--;
        resolve(batch.map((r) => ({ ok: true, status: 200, headers: {}, body: { kind: 'json', text: JSON.stringify(r.id) } })));
        this.onFree();
      });
    });
  }
  finishOne() {
    this.pending.shift()?.();
  }
}

const request = (id: string): WireRequest => ({ id, body: new Uint8Array(), contentType: undefined, headers: {}, query: {} });

function setup(
  options: { workers?: number; batchSize?: number; maxBatchDelayMs?: number; jobQueueSize?: number; clientTimeoutMs?: number } = {},
) {
  const observed = { queued: [] as number[], batches: [] as [number, number][] };
  const observer: BatchObserver = {
    queued: (seconds) => observed.queued.push(seconds),
    batchDone: (size, seconds) => observed.batches.push([size, seconds]),
  };
  // The pool calls back into the batcher, which is made just below (before any call).
  const pool: FakePool = new FakePool(options.workers ?? 1, () => batcher.pump());
  const batcher: Batcher = new Batcher(pool, {
    model: 'm',
    batchSize: options.batchSize ?? 4,
    maxBatchDelayMs: options.maxBatchDelayMs ?? 100,
    jobQueueSize: options.jobQueueSize ?? 100,
    clientTimeoutMs: options.clientTimeoutMs ?? 0,
    observer,
    now: () => Date.now(),
  });
  return { pool, batcher, observed };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('decide', () => {
  const base = { waiting: 1, oldestArrival: 0, now: 0, freeWorkers: 1, batchSize: 4, maxBatchDelayMs: 100 };
  test.each([
    [{ ...base, waiting: 0, oldestArrival: undefined }, { kind: 'idle' }],
    [{ ...base, freeWorkers: 0, waiting: 10 }, { kind: 'idle' }],
    [
      { ...base, waiting: 4 },
      { kind: 'dispatch', size: 4 },
    ],
    [
      { ...base, waiting: 9 },
      { kind: 'dispatch', size: 4 },
    ],
    [
      { ...base, waiting: 2, now: 50 },
      { kind: 'wait', until: 100 },
    ],
    [
      { ...base, waiting: 2, now: 100 },
      { kind: 'dispatch', size: 2 },
    ],
    [
      { ...base, batchSize: 1, maxBatchDelayMs: 5000 },
      { kind: 'dispatch', size: 1 },
    ],
  ])('%j → %j', (state, decision) => expect(decide(state)).toEqual(decision));
});

describe('Batcher', () => {
  test('a full batch goes at once, without waiting for the delay', () => {
    const { pool, batcher } = setup({ batchSize: 4 });
    for (let i = 0; i < 4; i++) void batcher.submit(request(`r${i}`));
    expect(pool.sizes).toEqual([4]);
  });

  test('a partial batch goes when the oldest request has waited maxBatchDelay since it arrived', () => {
    const { pool, batcher } = setup({ batchSize: 4, maxBatchDelayMs: 100 });
    void batcher.submit(request('a'));
    vi.advanceTimersByTime(60);
    void batcher.submit(request('b'));
    vi.advanceTimersByTime(39);
    expect(pool.sizes).toEqual([]);
    vi.advanceTimersByTime(1); // 100 ms after a arrived, 40 after b
    expect(pool.sizes).toEqual([2]);
  });

  test('with batchSize 1 a lone request never waits, whatever maxBatchDelay says', () => {
    const { pool, batcher } = setup({ batchSize: 1, maxBatchDelayMs: 5000 });
    void batcher.submit(request('a'));
    expect(pool.sizes).toEqual([1]);
  });

  test('the delay counts from arrival: time spent waiting for a busy worker counts', async () => {
    const { pool, batcher } = setup({ batchSize: 4, maxBatchDelayMs: 100 });
    for (let i = 0; i < 4; i++) void batcher.submit(request(`first${i}`));
    expect(pool.sizes).toEqual([4]); // the only worker is now busy
    void batcher.submit(request('late'));
    vi.advanceTimersByTime(150); // late has waited past the delay while the worker was busy
    expect(pool.sizes).toEqual([4]);
    pool.finishOne();
    await vi.advanceTimersByTimeAsync(0);
    expect(pool.sizes).toEqual([4, 1]); // sent the moment the worker freed, no fresh delay
  });

  test("the observer hears each request's queue time and each batch's round trip; a trace gets its own", async () => {
    const { pool, batcher, observed } = setup({ batchSize: 4, maxBatchDelayMs: 100 });
    const traces: RequestTrace[] = [{}, {}];
    void batcher.submit(request('a'), undefined, traces[0]);
    vi.advanceTimersByTime(30);
    void batcher.submit(request('b'), undefined, traces[1]);
    vi.advanceTimersByTime(70); // a has waited 100 ms, b 70 ms: the batch goes
    expect(pool.sizes).toEqual([2]);
    expect(observed.queued).toEqual([0.1, 0.07]);
    expect(traces).toEqual([
      { queueMs: 100, batchSize: 2 },
      { queueMs: 70, batchSize: 2 },
    ]);
    expect(observed.batches).toEqual([]); // not back yet
    vi.advanceTimersByTime(20);
    pool.finishOne();
    await vi.advanceTimersByTimeAsync(0);
    expect(observed.batches).toEqual([[2, 0.02]]);
  });

  test('requests queue up while workers are busy and leave in full batches', async () => {
    const { pool, batcher } = setup({ batchSize: 3, workers: 1 });
    const results = Array.from({ length: 7 }, (_, i) => batcher.submit(request(`r${i}`)));
    expect(pool.sizes).toEqual([3]);
    pool.finishOne();
    await vi.advanceTimersByTimeAsync(0);
    expect(pool.sizes).toEqual([3, 3]);
    pool.finishOne();
    await vi.advanceTimersByTimeAsync(100);
    pool.finishOne();
    await vi.advanceTimersByTimeAsync(0);
    expect(pool.sizes).toEqual([3, 3, 1]);
    const answers = await Promise.all(results);
    expect(answers.map((r) => (r.ok && r.body.kind === 'json' ? JSON.parse(r.body.text) : null))).toEqual([
      'r0',
      'r1',
      'r2',
      'r3',
      'r4',
      'r5',
      'r6',
    ]);
  });

  test('a full queue answers 503 KILN_ERR_QUEUE_FULL at once', async () => {
    const { batcher } = setup({ batchSize: 8, jobQueueSize: 2, workers: 0 });
    void batcher.submit(request('a'));
    void batcher.submit(request('b'));
    const third = await batcher.submit(request('c'));
    expect(third).toMatchObject({ ok: false, error: { code: 'KILN_ERR_QUEUE_FULL', status: 503 } });
    expect(third.ok ? '' : third.error.message).toContain('jobQueueSize 2');
  });

  test('clientTimeoutInMills drops expired requests before they run', async () => {
    const { pool, batcher } = setup({ batchSize: 8, clientTimeoutMs: 50, workers: 0 });
    const expired = batcher.submit(request('old'));
    vi.advanceTimersByTime(50);
    expect(await expired).toMatchObject({ ok: false, error: { code: 'KILN_ERR_CLIENT_TIMEOUT', status: 408 } });
    pool.workers = 1;
    batcher.pump();
    expect(pool.sizes).toEqual([]);
  });

  test('requests whose client has disconnected are dropped before they run', async () => {
    const { pool, batcher } = setup({ batchSize: 2, maxBatchDelayMs: 100 });
    const gone = new AbortController();
    const dropped = batcher.submit(request('gone'), gone.signal);
    void batcher.submit(request('stays'));
    expect(pool.sizes).toEqual([2]);
    pool.finishOne();
    await vi.advanceTimersByTimeAsync(0);
    const late = new AbortController();
    const lateResult = batcher.submit(request('late-gone'), late.signal);
    late.abort();
    vi.advanceTimersByTime(100);
    expect(pool.sizes).toEqual([2]);
    expect(await lateResult).toMatchObject({ ok: false, error: { message: 'the client disconnected before the request ran' } });
    expect((await dropped).ok).toBe(true); // it had already been sent
  });

  test('drained() resolves once nothing is queued or running', async () => {
    const { pool, batcher } = setup({ batchSize: 1 });
    void batcher.submit(request('a'));
    let done = false;
    void batcher.drained().then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(false);
    pool.finishOne();
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);
  });
});

describe("maxBatchDelay: 'auto'", () => {
  const auto = (cost: { a: number; b: number } | undefined, meanGapMs: number | undefined, maxLatencyMs?: number) => ({
    cost,
    meanGapMs,
    maxLatencyMs,
  });
  const base = { waiting: 1, oldestArrival: 0, now: 0, freeWorkers: 1, batchSize: 8, maxBatchDelayMs: 'auto' as const };

  test.each([
    // Nothing learned yet: never hold.
    ['no cost learned', { ...base, auto: auto(undefined, 1) }, { kind: 'dispatch', size: 1 }],
    ['no arrival rate yet', { ...base, auto: auto({ a: 1, b: 4 }, undefined) }, { kind: 'dispatch', size: 1 }],
    // c=1: the next request comes a round trip later, after longer than the fixed cost it would save.
    ['a lone request (gap 6 ms ≥ b 4 ms)', { ...base, auto: auto({ a: 1, b: 4 }, 6) }, { kind: 'dispatch', size: 1 }],
    // Requests every 1 ms, 4 ms of fixed cost to share: hold, at most b since the oldest arrived.
    ['fast arrivals: hold up to b', { ...base, now: 1, auto: auto({ a: 1, b: 4 }, 1) }, { kind: 'wait', until: 4 }],
    ['fast arrivals, b has passed', { ...base, waiting: 3, now: 4, auto: auto({ a: 1, b: 4 }, 1) }, { kind: 'dispatch', size: 3 }],
    ['maxLatencyMs bounds the hold', { ...base, now: 1, auto: auto({ a: 1, b: 4 }, 1, 2) }, { kind: 'wait', until: 2 }],
    ['a full batch goes at once', { ...base, waiting: 8, auto: auto({ a: 1, b: 4 }, 1) }, { kind: 'dispatch', size: 8 }],
    ['no free worker: idle', { ...base, freeWorkers: 0, auto: auto({ a: 1, b: 4 }, 1) }, { kind: 'idle' }],
  ])('%s', (_what, state, decision) => expect(decide(state)).toEqual(decision));

  test('the cost model fits cost(n) = a·n + b from batches of mixed sizes, and follows a change', () => {
    const model = new BatchCostModel();
    expect(model.estimate()).toBeUndefined();
    for (let i = 0; i < 40; i++) for (const n of [1, 2, 4, 8]) model.observe(n, 0.5 * n + 3); // a synthetic model
    const fit = model.estimate()!;
    expect(fit.a).toBeCloseTo(0.5, 6);
    expect(fit.b).toBeCloseTo(3, 6);
    for (let i = 0; i < 200; i++) for (const n of [1, 4]) model.observe(n, 2 * n + 1); // the model got slower per item
    expect(model.estimate()!.a).toBeCloseTo(2, 2);
    expect(model.estimate()!.b).toBeCloseTo(1, 2);
  });

  test('batches of one size only: all the cost counts as fixed', () => {
    const model = new BatchCostModel();
    for (let i = 0; i < 10; i++) model.observe(1, 5);
    expect(model.estimate()!.a).toBe(0);
    expect(model.estimate()!.b).toBeCloseTo(5, 9);
  });

  test('arrival gaps are a moving average', () => {
    const gaps = new ArrivalGaps(0.5);
    expect(gaps.meanMs).toBeUndefined();
    gaps.arrived(0);
    gaps.arrived(10);
    gaps.arrived(12);
    expect(gaps.meanMs).toBe(6); // 10, then halfway to 2
  });

  /** A batcher in auto mode whose pool takes `b + a·n` ms of fake time per batch. */
  function autoSetup(cost: { a: number; b: number }, maxLatencyMs?: number) {
    let busy = 0;
    const sizes: number[] = [];
    const batcher: Batcher = new Batcher(
      {
        freeWorkers: () => 1 - busy,
        run: (batch) => {
          busy++;
          sizes.push(batch.length);
          return new Promise((resolve) =>
            setTimeout(
              () => {
                busy--;
                resolve(batch.map(() => ({ ok: true, status: 200, headers: {}, body: { kind: 'json', text: '1' } })));
                batcher.pump();
              },
              cost.b + cost.a * batch.length,
            ),
          );
        },
      },
      { model: 'm', batchSize: 8, maxBatchDelayMs: 'auto', maxLatencyMs, jobQueueSize: 100, clientTimeoutMs: 0, now: () => Date.now() },
    );
    return { batcher, sizes };
  }

  test('at c=1 (each request sent when the last is answered) no request is ever held', async () => {
    const { batcher, sizes } = autoSetup({ a: 1, b: 4 });
    const waits: number[] = [];
    for (let i = 0; i < 20; i++) {
      const sent = Date.now();
      let answered = 0;
      const answer = batcher.submit(request(`r${i}`)).then(() => (answered = Date.now()));
      await vi.advanceTimersByTimeAsync(10);
      await answer;
      waits.push(answered - sent);
      await vi.advanceTimersByTimeAsync(1); // the client's round trip
    }
    expect(sizes).toEqual(new Array(20).fill(1));
    expect(waits.every((w) => w === 5)).toBe(true); // the run alone: held 0 ms
    expect(batcher.cost.estimate()!.b).toBeCloseTo(5, 9);
  });

  test('under a fast stream, requests leave in batches of up to batchSize and none is lost', async () => {
    const { batcher, sizes } = autoSetup({ a: 1, b: 4 });
    // Learn the cost first: a few lone requests, some pairs.
    for (let i = 0; i < 6; i++) {
      void batcher.submit(request(`warm${i}`));
      await vi.advanceTimersByTimeAsync(20);
    }
    const before = sizes.length;
    // Then one request every 0.5 ms for 40 ms: faster than the 4 ms of fixed cost a batch shares.
    for (let i = 0; i < 80; i++) {
      void batcher.submit(request(`fast${i}`));
      await vi.advanceTimersByTimeAsync(0.5);
    }
    await vi.advanceTimersByTimeAsync(100);
    const burst = sizes.slice(before);
    expect(burst.reduce((n, s) => n + s, 0)).toBe(80);
    expect(Math.max(...burst)).toBe(8);
    expect(burst.length).toBeLessThan(20);
  });
});
