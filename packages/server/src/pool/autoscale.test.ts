import { afterEach, describe, expect, it, vi } from 'vitest';
import { autoscale, Autoscaler, FRESH_MEMORY, SCALE_TICK_MS, type ScaleMemory, type ScaleView } from './autoscale.js';

const timings = { upAfterMs: 1_000, downAfterMs: 60_000 };
const view = (over: Partial<ScaleView> = {}): ScaleView => ({
  target: 1,
  free: 0,
  starting: 0,
  queued: 0,
  running: 1,
  minWorkers: 1,
  maxWorkers: 3,
  ...over,
});

/** Runs the policy over a list of (time, view) looks and returns the targets it chose. */
function replay(looks: [number, Partial<ScaleView>][]): number[] {
  let memory: ScaleMemory = FRESH_MEMORY;
  let target = 1;
  const targets: number[] = [];
  for (const [now, over] of looks) {
    const next = autoscale(view({ target, ...over }), memory, now, timings);
    ({ memory, target } = next);
    targets.push(target);
  }
  return targets;
}

describe('autoscale (the policy)', () => {
  it('adds a worker once requests have waited with every worker busy for upAfterMs, not before', () => {
    expect(
      replay([
        [0, { queued: 2 }],
        [500, { queued: 2 }],
        [999, { queued: 5 }],
        [1_000, { queued: 5 }],
      ]),
    ).toEqual([1, 1, 1, 2]);
  });

  it('starts the wait again when the pressure lets up, even for one look', () => {
    expect(
      replay([
        [0, { queued: 2 }],
        [600, { queued: 0 }],
        [1_100, { queued: 2 }],
        [2_000, { queued: 2 }],
        [2_100, { queued: 2 }],
      ]),
    ).toEqual([1, 1, 1, 1, 2]);
  });

  it('is not pressed while a worker is free (the batcher is filling a batch) or one is still starting', () => {
    expect(
      replay([
        [0, { queued: 4, free: 1 }],
        [5_000, { queued: 4, free: 1 }],
      ]),
    ).toEqual([1, 1]);
    expect(
      replay([
        [0, { queued: 4, starting: 1 }],
        [5_000, { queued: 4, starting: 1 }],
      ]),
    ).toEqual([1, 1]);
  });

  it('waits for the new worker before counting toward the next one, and stops at maxWorkers', () => {
    const targets = replay([
      [0, { queued: 9 }],
      [1_000, { queued: 9 }], // → 2
      [1_200, { queued: 9, starting: 1 }],
      [2_500, { queued: 9 }], // the new worker is up: the wait starts here
      [3_400, { queued: 9 }],
      [3_500, { queued: 9 }], // → 3
      [9_000, { queued: 9 }],
      [20_000, { queued: 9 }], // maxWorkers
    ]);
    expect(targets).toEqual([1, 2, 2, 2, 2, 3, 3, 3]);
  });

  it('goes back to minWorkers at once after downAfterMs with nothing queued or running', () => {
    let memory: ScaleMemory = FRESH_MEMORY;
    const idle = view({ target: 3, running: 0, free: 3 });
    for (const now of [0, 30_000, 59_999]) {
      const next = autoscale(idle, memory, now, timings);
      expect(next.target).toBe(3);
      memory = next.memory;
    }
    expect(autoscale(idle, memory, 60_000, timings).target).toBe(1);
  });

  it('does not count a model that is running a batch as idle', () => {
    let memory: ScaleMemory = FRESH_MEMORY;
    for (const now of [0, 30_000, 60_000, 120_000]) {
      const next = autoscale(view({ target: 3, running: 1, free: 2 }), memory, now, timings);
      expect(next.target).toBe(3);
      memory = next.memory;
    }
  });

  it('scales a minWorkers 0 model down to no workers, and leaves the start from zero to the pool', () => {
    const zero = { minWorkers: 0, maxWorkers: 2 };
    expect(
      autoscale(view({ ...zero, target: 1, running: 0, free: 1 }), { pressedSince: undefined, idleSince: 0 }, 60_000, timings).target,
    ).toBe(0);
    // At zero workers a waiting request is the pool's to serve (it starts one on demand).
    expect(
      autoscale(view({ ...zero, target: 0, queued: 3, running: 0 }), { pressedSince: 0, idleSince: undefined }, 10_000, timings).target,
    ).toBe(0);
  });
});

describe('Autoscaler (the timer around it)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('looks every tick while it may scale, applies new targets, and stops looking when told', () => {
    vi.useFakeTimers({ now: 0 });
    const pool = { target: 1, queued: 5, running: 1, free: 0 };
    const applied: number[] = [];
    const scaler = new Autoscaler(
      () => view({ target: pool.target, queued: pool.queued, running: pool.running, free: pool.free }),
      (target) => {
        applied.push(target);
        pool.target = target;
      },
      timings,
    );
    scaler.update(true);
    vi.advanceTimersByTime(SCALE_TICK_MS * 4); // 800 ms of pressure: not yet
    expect(applied).toEqual([]);
    vi.advanceTimersByTime(SCALE_TICK_MS * 2); // past 1 s
    expect(applied).toEqual([2]);
    // The load goes; a minute later the model is back to minWorkers.
    Object.assign(pool, { queued: 0, running: 0, free: 2 });
    vi.advanceTimersByTime(59_000);
    expect(applied).toEqual([2]);
    vi.advanceTimersByTime(1_400);
    expect(applied).toEqual([2, 1]);
    // Pressure again, but scaling was turned off (minWorkers raised to maxWorkers): nothing moves.
    Object.assign(pool, { queued: 5, running: 1, free: 0 });
    scaler.update(false);
    vi.advanceTimersByTime(10_000);
    expect(applied).toEqual([2, 1]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('forgets what it saw when the limits change, so a new maxWorkers waits a full upAfterMs', () => {
    vi.useFakeTimers({ now: 0 });
    const applied: number[] = [];
    const scaler = new Autoscaler(
      () => view({ queued: 5 }),
      (target) => applied.push(target),
      timings,
    );
    scaler.update(true);
    vi.advanceTimersByTime(800);
    scaler.update(true, { upAfterMs: 1_000, downAfterMs: 60_000 });
    vi.advanceTimersByTime(800);
    expect(applied).toEqual([]);
    vi.advanceTimersByTime(400);
    expect(applied).toEqual([2]);
    scaler.stop();
  });
});
