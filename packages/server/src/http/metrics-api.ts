import type { FastifyInstance } from 'fastify';
import type { MetricSample, Result } from '@kiln/handler-sdk/runtime';
import type { ModelVersion } from '../registry/model-version.js';
import type { ModelRegistry } from '../registry/registry.js';

/**
 * Counters for the metrics endpoint, in Prometheus text format: requests by model and status,
 * batch sizes, queue depth and workers, plus the samples handlers record with context.metrics.
 */
export class ServerMetrics {
  private readonly requests = new Map<string, number>();
  private readonly custom = new Map<string, { kind: string; help: string | undefined; value: number; count: number }>();

  recordResult(model: ModelVersion, result: Result): void {
    const status = result.ok ? result.status : result.error.status;
    const key = labels({ model_name: model.name, model_version: model.version, status: String(status) });
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  recordSample(sample: MetricSample): void {
    const key = `${sample.name}${labels(sample.labels)}`;
    const current = this.custom.get(key) ?? { kind: sample.kind, help: sample.help, value: 0, count: 0 };
    if (sample.kind === 'gauge') current.value = sample.value;
    else current.value += sample.value;
    current.count++;
    this.custom.set(key, current);
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
    const seen = new Set<string>();
    for (const [key, metric] of this.custom) {
      const name = key.slice(0, key.indexOf('{'));
      if (!seen.has(name)) {
        seen.add(name);
        family(name, metric.kind === 'histogram' ? 'summary' : metric.kind, metric.help ?? 'Recorded by the handler.');
      }
      if (metric.kind === 'histogram') {
        const suffix = key.slice(name.length);
        lines.push(`${name}_sum${suffix} ${metric.value}`, `${name}_count${suffix} ${metric.count}`);
      } else lines.push(`${key} ${metric.value}`);
    }
    return `${lines.join('\n')}\n`;
  }
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
