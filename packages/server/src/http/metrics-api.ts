import type { FastifyInstance } from 'fastify';
import type { MetricSample, Result } from '@kiln/handler-sdk/runtime';
import { DURATION_BUCKETS } from '../batching/durations.js';
import type { ModelVersion } from '../registry/model-version.js';
import type { ModelRegistry } from '../registry/registry.js';

/**
 * Counters for the metrics endpoint, in Prometheus text format: requests by model and status,
 * batch sizes, queue depth and workers, plus the samples handlers record with context.metrics.
 */
export class ServerMetrics {
  private readonly requests = new Map<string, number>();
  /** The handlers' metrics, by family name, then by label set: a family's samples are written together. */
  private readonly custom = new Map<string, Family>();

  recordResult(model: ModelVersion, result: Result): void {
    const status = result.ok ? result.status : result.error.status;
    const key = labels({ model_name: model.name, model_version: model.version, status: String(status) });
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  recordSample(sample: MetricSample): void {
    let family = this.custom.get(sample.name);
    if (family === undefined) {
      family = { kind: sample.kind, help: sample.help, buckets: sample.buckets ?? [], series: new Map() };
      this.custom.set(sample.name, family);
    }
    // A name is one family: a sample of another kind under it is dropped, not mixed in.
    if (family.kind !== sample.kind) return;
    const key = labels(sample.labels);
    const series = family.series.get(key) ?? { value: 0, count: 0, buckets: family.buckets.map(() => 0) };
    if (sample.kind === 'gauge') series.value = sample.value;
    else series.value += sample.value;
    series.count++;
    // Each bucket counts the observations at or below its bound (cumulative, as Prometheus reads them).
    family.buckets.forEach((bound, i) => {
      if (sample.value <= bound) series.buckets[i]!++;
    });
    family.series.set(key, series);
  }

  render(registry: ModelRegistry): string {
    const lines: string[] = [];
    const family = (name: string, type: string, help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family('kiln_requests_total', 'counter', 'Inference requests answered, by model and HTTP status.');
    for (const [key, value] of this.requests) lines.push(`kiln_requests_total${key} ${value}`);
    family('kiln_batches_total', 'counter', 'Batches sent to workers, by model and batch size.');
    const models = registry.all().map((m) => ({ labels: { model_name: m.name, model_version: m.version }, ...m.stats() }));
    for (const m of models) {
      for (const [size, count] of m.batchSizes)
        lines.push(`kiln_batches_total${labels({ ...m.labels, batch_size: String(size) })} ${count}`);
    }
    family('kiln_queue_size', 'gauge', 'Requests waiting for a worker, by model.');
    for (const m of models) lines.push(`kiln_queue_size${labels(m.labels)} ${m.queued}`);
    family('kiln_workers_ready', 'gauge', 'Workers ready to serve, by model.');
    for (const m of models) lines.push(`kiln_workers_ready${labels(m.labels)} ${m.readyWorkers}`);
    family('kiln_queue_seconds', 'histogram', 'How long each request waited in the queue before its batch was sent, by model.');
    for (const m of models) histogram(lines, 'kiln_queue_seconds', labels(m.labels), DURATION_BUCKETS, m.queue);
    family(
      'kiln_batch_seconds',
      'histogram',
      "How long each batch took, by model and phase: the handler's preprocess, inference and postprocess as its worker timed them, and total, from sending the batch to its results.",
    );
    for (const m of models) {
      const { phases } = m;
      const timed = { preprocess: phases.preprocess, inference: phases.inference, postprocess: phases.postprocess, total: m.batch };
      for (const [phase, durations] of Object.entries(timed)) {
        if (durations.count > 0 || phase === 'total')
          histogram(lines, 'kiln_batch_seconds', labels({ ...m.labels, phase }), DURATION_BUCKETS, durations);
      }
    }
    for (const [name, metric] of this.custom) {
      family(name, metric.kind, metric.help ?? 'Recorded by the handler.');
      for (const [key, series] of metric.series) {
        if (metric.kind === 'histogram')
          histogram(lines, name, key, metric.buckets, { ...series, sum: series.value, cumulative: () => series.buckets });
        else lines.push(`${name}${key} ${series.value}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}

interface Family {
  kind: MetricSample['kind'];
  help: string | undefined;
  /** A histogram's bucket upper bounds, from its first sample. */
  buckets: readonly number[];
  series: Map<string, { value: number; count: number; buckets: number[] }>;
}

/** One histogram series: cumulative `_bucket` lines for each bound, then `+Inf`, `_sum` and `_count`. */
function histogram(
  lines: string[],
  name: string,
  key: string,
  bounds: readonly number[],
  series: { sum: number; count: number; cumulative(): readonly number[] },
): void {
  const withLe = (le: string) => `${key.slice(0, -1)}${key.length > 2 ? ',' : ''}le="${le}"}`;
  const counts = series.cumulative();
  bounds.forEach((bound, i) => lines.push(`${name}_bucket${withLe(String(bound))} ${counts[i]}`));
  lines.push(`${name}_bucket${withLe('+Inf')} ${series.count}`, `${name}_sum${key} ${series.sum}`, `${name}_count${key} ${series.count}`);
}

function labels(values: Readonly<Record<string, string>>): string {
  const body = Object.entries(values)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
  return `{${body}}`;
}

export function metricsApi(app: FastifyInstance, registry: ModelRegistry, metrics: ServerMetrics): void {
  app.get('/metrics', async (_request, reply) => reply.type('text/plain; version=0.0.4').send(metrics.render(registry)));
}
