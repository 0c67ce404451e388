import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Histogram } from 'prom-client';
import type { ServerMetrics } from '../observability/server-metrics.js';
import { residentBytes } from '../pool/resident-memory.js';
import type { ModelVersion } from '../registry/model-version.js';
import type { ModelRegistry } from '../registry/registry.js';
import { SERVER_VERSION } from '../version.js';

export interface StatusDeps {
  registry: ModelRegistry;
  metrics: ServerMetrics;
  /** The APIs' addresses, once bound (the curl lines name the inference API's). */
  addresses: () => Record<string, string>;
  /** Whether inference requests need the token (the curl lines then send it). */
  inferenceNeedsToken: boolean;
  startedAt: number;
}

/** A histogram's cumulative counts: `counts[i]` observations at or below `bounds[i]`, the last for +Inf. */
export interface Cumulative {
  bounds: number[];
  counts: number[];
  sum: number;
}

/**
 * GET / (the status page) and GET /status (what it shows) on the management API, behind its
 * token like every route there. Counts are cumulative since each version was registered: the page
 * turns them into rates, percentiles and mean batch sizes between two readings.
 */
export function statusApi(app: FastifyInstance, deps: StatusDeps): void {
  const page = readFileSync(new URL('./status-page.html', import.meta.url), 'utf8');
  app.get('/', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page),
  );
  app.get(
    '/status',
    { schema: { summary: "The server's models, workers, queues and cumulative counts (the status page reads this)" } },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      const latency = await histogramByVersion(deps.metrics.families.requestSeconds);
      const sizes = await histogramByVersion(deps.metrics.families.batchSize);
      const addresses = deps.addresses();
      return {
        server: {
          version: SERVER_VERSION,
          pid: process.pid,
          uptimeSeconds: (Date.now() - deps.startedAt) / 1000,
          time: new Date().toISOString(),
          rssBytes: process.memoryUsage.rss(),
          addresses,
        },
        models: deps.registry.all().map((version) => {
          const key = `${version.name}\u0000${version.version}`;
          return describe(version, deps, addresses.inference ?? '', latency.get(key), sizes.get(key));
        }),
      };
    },
  );
}

function describe(
  version: ModelVersion,
  deps: StatusDeps,
  inference: string,
  latency: Cumulative | undefined,
  sizes: Cumulative | undefined,
) {
  const c = version.config;
  const view = version.view(residentBytes);
  const stats = version.measured?.stats.toJson(version.name, version.version);
  const described = version.describe(residentBytes);
  return {
    name: version.name,
    version: version.version,
    isDefault: deps.registry.defaultVersion(version.name) === version.version,
    state: version.state.kind,
    ...(version.state.kind === 'ready' ? {} : { reason: version.reason }),
    isolation: version.isolation,
    // The provider its sessions run on, never only the one asked for.
    executionProvider: version.providers[0],
    gpus: version.onGpu ? version.gpus : [],
    batchSize: c.batchSize,
    maxBatchDelay: c.maxBatchDelayMs,
    jobQueueSize: c.jobQueueSize,
    queueDepth: view.queued,
    workers: view.workers.map((w) => {
      const where = described.workers.find((d) => d.id === w.id);
      return { id: w.id, pid: where?.pid, threadId: where?.threadId, state: w.state, memoryBytes: w.memoryBytes };
    }),
    totals: {
      requests: (stats?.inference_stats.success.count ?? 0) + (stats?.inference_stats.fail.count ?? 0),
      errors: stats?.inference_stats.fail.count ?? 0,
      batches: sizes?.counts.at(-1) ?? 0,
      batchedRequests: sizes?.sum ?? 0,
      latency: latency ?? {
        bounds: [...deps.metrics.options.latencyBuckets],
        counts: [...deps.metrics.options.latencyBuckets, 0].map(() => 0),
        sum: 0,
      },
    },
    curl: curlLine(version, inference, deps.inferenceNeedsToken),
  };
}

/** The cumulative buckets of a histogram family, by "name\0version". */
async function histogramByVersion(histogram: Histogram<'model_name' | 'model_version'>): Promise<Map<string, Cumulative>> {
  const out = new Map<string, Cumulative>();
  const { name, values } = await histogram.get();
  for (const value of values) {
    const key = `${String(value.labels.model_name)}\u0000${String(value.labels.model_version)}`;
    const entry = out.get(key) ?? { bounds: [], counts: [], sum: 0 };
    if (value.metricName === `${name}_bucket`) {
      const le = (value.labels as Record<string, string | number | undefined>).le;
      if (le !== '+Inf') entry.bounds.push(Number(le));
      entry.counts.push(value.value);
    } else if (value.metricName === `${name}_sum`) entry.sum = value.value;
    out.set(key, entry);
  }
  return out;
}

/**
 * A curl line that calls the model: a v2 request of zeros shaped like its first input, when the
 * manifest gives a small fixed shape; otherwise TorchServe's route with a file to send.
 */
export function curlLine(version: ModelVersion, inference: string, needsToken: boolean): string {
  const auth = needsToken ? ` -H "Authorization: Bearer $KILN_TOKEN"` : '';
  const input = version.signature?.inputs[0];
  const dims = input?.shape?.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  const count = dims?.reduce((a, b) => a * b, 1) ?? Infinity;
  if (input !== undefined && dims !== undefined && count <= 64 && input.datatype !== 'BYTES') {
    const body = JSON.stringify({
      inputs: [{ name: input.name, datatype: input.datatype, shape: dims, data: new Array<number>(count).fill(0) }],
    });
    return `curl -s -X POST ${inference}/v2/models/${version.name}/versions/${version.version}/infer${auth} -H 'content-type: application/json' -d '${body}'`;
  }
  return `curl -s -X POST ${inference}/predictions/${version.name}/${version.version}${auth} -T input.jpg`;
}
