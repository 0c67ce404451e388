import type { PhaseTimings } from '@kiln/handler-sdk/runtime';

/** A count and the nanoseconds it took, as Triton's statistics extension writes them. */
export interface Duration {
  count: number;
  ns: number;
}

const duration = (): Duration => ({ count: 0, ns: 0 });
const add = (d: Duration, count: number, ns: number) => {
  d.count += count;
  d.ns += Math.round(ns);
};

interface BatchStat {
  batch_size: number;
  compute_input: Duration;
  compute_infer: Duration;
  compute_output: Duration;
}

/**
 * One model version's figures for `GET /v2/models/{m}/stats`, in Triton's shape, fed by the same
 * measurements as the Prometheus families (see version-metrics.ts):
 * - `success` and `fail`: requests that reached the model, and their end-to-end time;
 * - `queue`: each request's wait before its batch was sent;
 * - `compute_input`, `compute_infer`, `compute_output`: the handler's preprocess, inference and
 *   postprocess, counted once per request, each request charged its whole batch's time (as
 *   Triton does);
 * - `batch_stats`: by batch size, one count per batch and the batch's time.
 */
export class TritonStats {
  private readonly success = duration();
  private readonly fail = duration();
  private readonly queue = duration();
  private readonly computeInput = duration();
  private readonly computeInfer = duration();
  private readonly computeOutput = duration();
  private readonly batches = new Map<number, BatchStat>();
  private inferences = 0;
  private executions = 0;
  private lastInference = 0;

  answered(ok: boolean, seconds: number): void {
    add(ok ? this.success : this.fail, 1, seconds * 1e9);
    this.lastInference = Date.now();
  }

  queued(seconds: number): void {
    add(this.queue, 1, seconds * 1e9);
  }

  /** A batch of `size` was answered; `ms` is what the worker timed of each phase, if it timed them. */
  executed(size: number, ms: PhaseTimings | undefined): void {
    this.executions++;
    this.inferences += size;
    if (ms === undefined) return;
    let stat = this.batches.get(size);
    if (stat === undefined) {
      stat = { batch_size: size, compute_input: duration(), compute_infer: duration(), compute_output: duration() };
      this.batches.set(size, stat);
    }
    add(stat.compute_input, 1, ms.preprocess * 1e6);
    add(stat.compute_infer, 1, ms.inference * 1e6);
    add(stat.compute_output, 1, ms.postprocess * 1e6);
    add(this.computeInput, size, size * ms.preprocess * 1e6);
    add(this.computeInfer, size, size * ms.inference * 1e6);
    add(this.computeOutput, size, size * ms.postprocess * 1e6);
  }

  /** One entry of `model_stats`. */
  toJson(name: string, version: string) {
    return {
      name,
      version,
      last_inference: this.lastInference,
      inference_count: this.inferences,
      execution_count: this.executions,
      inference_stats: {
        success: { ...this.success },
        fail: { ...this.fail },
        queue: { ...this.queue },
        compute_input: { ...this.computeInput },
        compute_infer: { ...this.computeInfer },
        compute_output: { ...this.computeOutput },
        cache_hit: duration(),
        cache_miss: duration(),
      },
      batch_stats: [...this.batches.values()]
        .sort((a, b) => a.batch_size - b.batch_size)
        .map((s) => ({
          ...s,
          compute_input: { ...s.compute_input },
          compute_infer: { ...s.compute_infer },
          compute_output: { ...s.compute_output },
        })),
    };
  }
}
