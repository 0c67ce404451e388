/** What the autoscaler sees of a model version at one moment. */
export interface ScaleView {
  /** Workers the pool is asked to keep (running or starting). */
  target: number;
  /** Workers loaded and waiting for a batch. */
  free: number;
  /** Workers still loading their model. */
  starting: number;
  /** Requests waiting in the queue. */
  queued: number;
  /** Requests being run by a worker. */
  running: number;
  minWorkers: number;
  maxWorkers: number;
}

export interface ScaleTimings {
  /** How long requests must wait with every worker busy before a worker is added. */
  upAfterMs: number;
  /** How long the model must be idle before it goes back to minWorkers. */
  downAfterMs: number;
}

/** What the policy remembers between two looks: since when the pressure or the idleness has lasted. */
export interface ScaleMemory {
  pressedSince: number | undefined;
  idleSince: number | undefined;
}

export const FRESH_MEMORY: ScaleMemory = Object.freeze({ pressedSince: undefined, idleSince: undefined });

/**
 * The autoscaling policy, a pure function of what the pool looks like now, what it looked like
 * before (`memory`) and the time:
 * - pressed (requests wait, no worker is free and none is starting) for `upAfterMs`: one more
 *   worker, up to maxWorkers; the wait starts again, so the next one comes `upAfterMs` after the
 *   new worker is up, if the pressure lasts;
 * - idle (nothing queued or running) for `downAfterMs`: back to minWorkers at once;
 * - a pool at zero workers is left alone: its first request starts a worker on demand (the pool
 *   does that without waiting for a look).
 */
export function autoscale(
  view: ScaleView,
  memory: ScaleMemory,
  now: number,
  timings: ScaleTimings,
): { target: number; memory: ScaleMemory } {
  const { target, minWorkers, maxWorkers } = view;
  const pressed = view.queued > 0 && view.free === 0 && view.starting === 0;
  const idle = view.queued === 0 && view.running === 0;
  const pressedSince = pressed ? (memory.pressedSince ?? now) : undefined;
  const idleSince = idle ? (memory.idleSince ?? now) : undefined;
  if (target > 0 && target < maxWorkers && pressedSince !== undefined && now - pressedSince >= timings.upAfterMs) {
    return { target: target + 1, memory: { pressedSince: undefined, idleSince } };
  }
  if (target > minWorkers && idleSince !== undefined && now - idleSince >= timings.downAfterMs) {
    return { target: minWorkers, memory: { pressedSince, idleSince: undefined } };
  }
  return { target, memory: { pressedSince, idleSince } };
}

/** How often the autoscaler looks at a pool that can scale. */
export const SCALE_TICK_MS = 200;

/**
 * Runs the policy every SCALE_TICK_MS while the model can scale (maxWorkers above minWorkers), and
 * hands each new target to `apply`. The timer is unref'd: it never keeps the process alive.
 */
export class Autoscaler {
  private memory: ScaleMemory = FRESH_MEMORY;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly look: () => ScaleView,
    private readonly apply: (target: number) => void,
    private timings: ScaleTimings,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts or stops looking, as the version's minWorkers/maxWorkers allow scaling or not. */
  update(canScale: boolean, timings: ScaleTimings = this.timings): void {
    this.timings = timings;
    this.memory = FRESH_MEMORY;
    if (!canScale) return this.stop();
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.tick(), SCALE_TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look: exported for the tests' fake clocks, and called by the timer. */
  tick(): void {
    const view = this.look();
    const next = autoscale(view, this.memory, this.now(), this.timings);
    this.memory = next.memory;
    if (next.target !== view.target) this.apply(next.target);
  }
}
