import type { Counter, Gauge, Histogram } from 'prom-client';
import type { PhaseTimings } from '@kiln/handler-sdk/runtime';
import { TritonStats } from './triton-stats.js';

type ModelLabels = 'model_name' | 'model_version';

/** The families a VersionMetrics writes to (server-metrics.ts makes them). */
export interface Families {
  host: { Level: string; Hostname: string };
  requests: Counter<ModelLabels | 'status' | 'error_code' | 'api'>;
  requestSeconds: Histogram<ModelLabels>;
  queueSeconds: Histogram<ModelLabels>;
  batchSeconds: Histogram<ModelLabels | 'phase'>;
  batchSize: Histogram<ModelLabels>;
  batches: Counter<ModelLabels | 'batch_size'>;
  restarts: Counter<ModelLabels>;
  torchserve?: {
    inferenceRequests: Counter<ModelLabels | 'hostname'>;
    inferenceLatency: Counter<ModelLabels | 'hostname'>;
    queueLatency: Counter<ModelLabels | 'hostname'>;
    requests2xx: Counter<'Level' | 'Hostname'>;
    requests4xx: Counter<'Level' | 'Hostname'>;
    requests5xx: Counter<'Level' | 'Hostname'>;
    queueTime: Gauge<'Level' | 'Hostname'>;
    workerThreadTime: Gauge<'Level' | 'Hostname'>;
    workerLoadTime: Gauge<'WorkerName' | 'Level' | 'Hostname'>;
  };
}

type Observer = { observe(value: number): void };
type Incrementer = { inc(value?: number): void };

/**
 * One model version's series, bound to its labels once: an observation on the hot path is a
 * bucket search and an addition, with no label lookup. It also keeps the version's Triton
 * statistics, from the same measurements.
 */
export class VersionMetrics {
  readonly labels: { name: string; version: string };
  readonly stats = new TritonStats();
  private readonly request: Observer;
  private readonly queue: Observer;
  private readonly batch: Observer;
  private readonly phase: Record<keyof PhaseTimings, Observer>;
  private readonly size: Observer;
  private readonly restartCount: Incrementer;
  private readonly batchCounts = new Map<number, Incrementer>();
  private readonly ts: { requests: Incrementer; latency: Incrementer; queue: Incrementer } | undefined;

  constructor(
    private readonly families: Families,
    name: string,
    version: string,
  ) {
    this.labels = { name, version };
    const f = families;
    this.request = f.requestSeconds.labels(name, version);
    this.queue = f.queueSeconds.labels(name, version);
    this.batch = f.batchSeconds.labels(name, version, 'total');
    this.phase = {
      preprocess: f.batchSeconds.labels(name, version, 'preprocess'),
      inference: f.batchSeconds.labels(name, version, 'inference'),
      postprocess: f.batchSeconds.labels(name, version, 'postprocess'),
    };
    this.size = f.batchSize.labels(name, version);
    this.restartCount = f.restarts.labels(name, version);
    this.restartCount.inc(0); // shown as 0 from the start, so that rate() sees the first restart
    const ts = f.torchserve;
    this.ts =
      ts === undefined
        ? undefined
        : {
            requests: ts.inferenceRequests.labels(name, version, f.host.Hostname),
            latency: ts.inferenceLatency.labels(name, version, f.host.Hostname),
            queue: ts.queueLatency.labels(name, version, f.host.Hostname),
          };
  }

  /** A request that reached this version's queue was answered, `seconds` after it arrived. */
  answered(ok: boolean, seconds: number): void {
    this.request.observe(seconds);
    this.stats.answered(ok, seconds);
    if (this.ts !== undefined) {
      this.ts.requests.inc();
      this.ts.latency.inc(seconds * 1e6);
    }
  }

  /** A request's batch was sent, `seconds` after it arrived. */
  queued(seconds: number): void {
    this.queue.observe(seconds);
    this.stats.queued(seconds);
    if (this.ts !== undefined) {
      this.ts.queue.inc(seconds * 1e6);
      this.families.torchserve!.queueTime.set(this.families.host, seconds * 1000);
    }
  }

  /** A batch of `size` came back `seconds` after it was sent; `ms` is the handler's own timing of its phases. */
  batchDone(size: number, seconds: number, ms: PhaseTimings | undefined): void {
    this.batch.observe(seconds);
    this.size.observe(size);
    let count = this.batchCounts.get(size);
    if (count === undefined) {
      count = this.families.batches.labels(this.labels.name, this.labels.version, String(size));
      this.batchCounts.set(size, count);
    }
    count.inc();
    if (ms !== undefined) {
      this.phase.preprocess.observe(ms.preprocess / 1000);
      this.phase.inference.observe(ms.inference / 1000);
      this.phase.postprocess.observe(ms.postprocess / 1000);
    }
    this.stats.executed(size, ms);
    const ts = this.families.torchserve;
    if (ts !== undefined) {
      const handlerMs = ms === undefined ? 0 : ms.preprocess + ms.inference + ms.postprocess;
      ts.workerThreadTime.set(this.families.host, Math.max(0, seconds * 1000 - handlerMs));
    }
  }

  /** A worker was started to replace one that ended unasked. */
  restarted(): void {
    this.restartCount.inc();
  }

  /** A worker finished loading, `ms` after it was started. */
  workerLoaded(worker: string, ms: number): void {
    this.families.torchserve?.workerLoadTime.set({ WorkerName: worker, ...this.families.host }, ms);
  }

  /** Drops this version's series from every family (it was unregistered). */
  remove(): void {
    const f = this.families;
    const { name, version } = this.labels;
    const model = { model_name: name, model_version: version };
    for (const family of [f.requestSeconds, f.queueSeconds, f.batchSize, f.restarts]) family.remove(model);
    for (const phase of ['preprocess', 'inference', 'postprocess', 'total']) f.batchSeconds.remove({ ...model, phase });
    for (const size of this.batchCounts.keys()) f.batches.remove({ ...model, batch_size: String(size) });
    if (f.torchserve !== undefined) {
      const ts = { ...model, hostname: f.host.Hostname };
      for (const family of [f.torchserve.inferenceRequests, f.torchserve.inferenceLatency, f.torchserve.queueLatency]) family.remove(ts);
    }
  }
}
