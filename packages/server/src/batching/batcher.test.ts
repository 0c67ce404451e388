import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { Result, WireRequest } from '@kiln/handler-sdk/runtime';
import { decide } from './batch-policy.js';
import { Batcher, type BatchRunner } from './batcher.js';

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
  // The pool calls back into the batcher, which is made just below (before any call).
  const pool: FakePool = new FakePool(options.workers ?? 1, () => batcher.pump());
  const batcher: Batcher = new Batcher(pool, {
    model: 'm',
    batchSize: options.batchSize ?? 4,
    maxBatchDelayMs: options.maxBatchDelayMs ?? 100,
    jobQueueSize: options.jobQueueSize ?? 100,
    clientTimeoutMs: options.clientTimeoutMs ?? 0,
    now: () => Date.now(),
  });
  return { pool, batcher };
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
