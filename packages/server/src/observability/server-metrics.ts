import { hostname } from 'node:os';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MetricSample } from '@kiln/handler-sdk/runtime';
import { gpuUsage, registerGpuMetrics, type GpuUsageReader } from './gpu-usage.js';
import { HandlerMetrics } from './handler-metrics.js';
import { VersionMetrics, type Families } from './version-metrics.js';

export interface MetricsOptions {
  /** Upper bounds, in seconds, of the request, queue and batch duration histograms. */
  latencyBuckets: readonly number[];
  /** Upper bounds of kiln_batch_size. */
  batchSizeBuckets: readonly number[];
  /** Also write TorchServe's families (ts_inference_requests_total, Requests2XX, QueueTime…). */
  torchserveMetrics: boolean;
  /** Told of a handler metric refused (a name declared with two types, say), once per name. */
  onRefused?: (message: string) => void;
  /** Where the GPU gauges read nvidia-smi from (default: the server's one reader). */
  gpuUsage?: GpuUsageReader;
}

/** What the worker pool and model versions report, read when /metrics is scraped. */
export interface WorkerView {
  id: string;
  state: string;
  /** RSS of a process worker, JavaScript heap of a thread worker. */
  memoryBytes: number;
}

export interface VersionView {
  name: string;
  version: string;
  /** The execution provider its sessions run on. */
  provider: string;
  onGpu: boolean;
  queued: number;
  workers: readonly WorkerView[];
}

/** How an inference route's request ended, for kiln_requests_total and TorchServe's RequestsNXX. */
export interface Answered {
  /** The HTTP routes' APIs, and the gRPC APIs' (whose `status` is the HTTP status of the same outcome). */
  api: 'torchserve' | 'v2' | 'v1' | 'v2-grpc' | 'torchserve-grpc';
  status: number;
  errorCode: string;
  /** The version whose queue the request reached, or that the path named; undefined for neither. */
  model: VersionMetrics | undefined;
  /** The registered model the path named (its name and version labels), when `model` is not known. */
  labels?: { name: string; version: string } | undefined;
  /** Whether the request reached the model's queue; only those are timed end to end. */
  reachedModel: boolean;
  seconds: number;
}

/**
 * The server's Prometheus registry: Kiln's own families, TorchServe's names for existing
 * dashboards, prom-client's process metrics, and the handlers' metrics. Hot-path observations go
 * through a VersionMetrics, whose series are bound to their labels once.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly families: Families;
  readonly handlers: HandlerMetrics;
  private views: () => readonly VersionView[] = () => [];

  constructor(readonly options: MetricsOptions) {
    const registers = [this.registry];
    const model = ['model_name', 'model_version'] as const;
    const host = { Level: 'Host', Hostname: hostname() };
    this.families = {
      host,
      requests: new Counter({
        name: 'kiln_requests_total',
        help: 'Requests to the inference routes, by model, HTTP status, Kiln error code ("" for none) and API; refusals before the queue (401, 404, 413, 503) included.',
        labelNames: [...model, 'status', 'error_code', 'api'],
        registers,
      }),
      requestSeconds: new Histogram({
        name: 'kiln_request_seconds',
        help: 'End-to-end time of each request that reached a model, from its headers being read to its answer being written, by model.',
        labelNames: model,
        buckets: [...options.latencyBuckets],
        registers,
      }),
      queueSeconds: new Histogram({
        name: 'kiln_queue_seconds',
        help: 'How long each request waited in the queue before its batch was sent, by model.',
        labelNames: model,
        buckets: [...options.latencyBuckets],
        registers,
      }),
      batchSeconds: new Histogram({
        name: 'kiln_batch_seconds',
        help: "How long each batch took, by model and phase: the handler's preprocess, inference and postprocess as its worker timed them, and total, from sending the batch to its results.",
        labelNames: [...model, 'phase'],
        buckets: [...options.latencyBuckets],
        registers,
      }),
      batchSize: new Histogram({
        name: 'kiln_batch_size',
        help: 'Requests in each batch sent to a worker, by model.',
        labelNames: model,
        buckets: [...options.batchSizeBuckets],
        registers,
      }),
      batches: new Counter({
        name: 'kiln_batches_total',
        help: 'Batches sent to workers, by model and exact batch size.',
        labelNames: [...model, 'batch_size'],
        registers,
      }),
      restarts: new Counter({
        name: 'kiln_worker_restarts_total',
        help: 'Workers started to replace one that died, hung or failed to load, by model.',
        labelNames: model,
        registers,
      }),
      ...(options.torchserveMetrics ? torchserveFamilies(registers) : {}),
    };
    const views = () => this.views();
    new Gauge({
      name: 'kiln_queue_size',
      help: 'Requests waiting for a worker, by model.',
      labelNames: model,
      registers,
      collect() {
        this.reset();
        for (const v of views()) this.set({ model_name: v.name, model_version: v.version }, v.queued);
      },
    });
    new Gauge({
      name: 'kiln_workers',
      help: 'Workers by model and state: starting, idle, busy, stopping.',
      labelNames: [...model, 'state'],
      registers,
      collect() {
        this.reset();
        for (const v of views()) {
          const counts: Record<string, number> = { starting: 0, idle: 0, busy: 0, stopping: 0 };
          for (const w of v.workers) counts[w.state] = (counts[w.state] ?? 0) + 1;
          for (const [state, n] of Object.entries(counts)) this.set({ model_name: v.name, model_version: v.version, state }, n);
        }
      },
    });
    new Gauge({
      name: 'kiln_worker_memory_bytes',
      help: "Each worker's memory: the resident set of a process worker, the JavaScript heap in use of a thread worker (threads share the server's resident set).",
      labelNames: [...model, 'worker'],
      registers,
      collect() {
        this.reset();
        for (const v of views())
          for (const w of v.workers) this.set({ model_name: v.name, model_version: v.version, worker: w.id }, w.memoryBytes);
      },
    });
    new Gauge({
      name: 'kiln_model_execution_provider',
      help: "1 for the ONNX Runtime execution provider each model version's sessions run on (not the one its config asked for), with the device: cpu or gpu.",
      labelNames: [...model, 'provider', 'device'],
      registers,
      collect() {
        this.reset();
        for (const v of views())
          this.set({ model_name: v.name, model_version: v.version, provider: v.provider, device: v.onGpu ? 'gpu' : 'cpu' }, 1);
      },
    });
    registerGpuMetrics(this.registry, options.gpuUsage ?? gpuUsage, options.torchserveMetrics ? { host } : undefined);
    collectDefaultMetrics({ register: this.registry });
    this.handlers = new HandlerMetrics(this.registry, options.onRefused);
  }

  /** Where the gauges read the models' queues and workers from, at each scrape. */
  watch(views: () => readonly VersionView[]): void {
    this.views = views;
  }

  /**
   * The series of a version just registered (a name and version are registered once at a time);
   * its `remove()` drops them when it is unregistered, so that /metrics shows models that exist.
   */
  forVersion(name: string, version: string): VersionMetrics {
    return new VersionMetrics(this.families, name, version);
  }

  /** One request on an inference route was answered. */
  answered(a: Answered): void {
    const f = this.families;
    const version = a.model;
    const labels =
      version?.labels ?? (a.labels === undefined ? { name: '', version: '' } : { name: a.labels.name, version: a.labels.version });
    f.requests.labels(labels.name, labels.version, String(a.status), a.errorCode, a.api).inc();
    if (a.reachedModel && version !== undefined) version.answered(a.status < 400, a.seconds);
    if (f.torchserve !== undefined) {
      const counter = a.status < 400 ? f.torchserve.requests2xx : a.status < 500 ? f.torchserve.requests4xx : f.torchserve.requests5xx;
      counter.inc(f.host);
    }
  }

  recordSample(sample: MetricSample): void {
    this.handlers.record(sample);
  }

  /** The text of /metrics, or of the families `names` lists (TorchServe's `?name[]=`); unknown names are skipped. */
  async render(names?: readonly string[]): Promise<string> {
    if (names === undefined || names.length === 0) return this.registry.metrics();
    const known = new Set(this.registry.getMetricsAsArray().map((m) => m.name));
    const parts = await Promise.all([...new Set(names)].filter((n) => known.has(n)).map((n) => this.registry.getSingleMetricAsString(n)));
    return parts.length === 0 ? '' : `${parts.join('\n')}\n`;
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** TorchServe's metric names and labels (metrics_mode=prometheus), so that its dashboards keep working. */
function torchserveFamilies(registers: Registry[]) {
  const model = ['model_name', 'model_version', 'hostname'] as const;
  const host = ['Level', 'Hostname'] as const;
  return {
    torchserve: {
      inferenceRequests: new Counter({
        name: 'ts_inference_requests_total',
        help: 'TorchServe: requests that reached a model.',
        labelNames: model,
        registers,
      }),
      inferenceLatency: new Counter({
        name: 'ts_inference_latency_microseconds',
        help: 'TorchServe: cumulative end-to-end time of the requests that reached a model, in microseconds.',
        labelNames: model,
        registers,
      }),
      queueLatency: new Counter({
        name: 'ts_queue_latency_microseconds',
        help: 'TorchServe: cumulative time requests waited in the queue, in microseconds.',
        labelNames: model,
        registers,
      }),
      requests2xx: new Counter({
        name: 'Requests2XX',
        help: 'TorchServe: inference requests answered with a status below 400.',
        labelNames: host,
        registers,
      }),
      requests4xx: new Counter({ name: 'Requests4XX', help: 'TorchServe: inference requests answered 4xx.', labelNames: host, registers }),
      requests5xx: new Counter({ name: 'Requests5XX', help: 'TorchServe: inference requests answered 5xx.', labelNames: host, registers }),
      queueTime: new Gauge({
        name: 'QueueTime',
        help: 'TorchServe: how long the last request waited in the queue, in milliseconds.',
        labelNames: host,
        registers,
      }),
      workerThreadTime: new Gauge({
        name: 'WorkerThreadTime',
        help: "TorchServe: the last batch's time outside the handler (sending it to its worker and its results back), in milliseconds.",
        labelNames: host,
        registers,
      }),
      workerLoadTime: new Gauge({
        name: 'WorkerLoadTime',
        help: 'TorchServe: how long each worker took to start and load its model, in milliseconds.',
        labelNames: ['WorkerName', ...host],
        registers,
      }),
    },
  };
}
