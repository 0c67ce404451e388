/*
 * The server's side of a level, read from its Prometheus /metrics before and after: how many
 * batches of each size, how long requests queued, and how long each batch spent in each phase.
 */
import type { ServerBreakdown } from './report-types.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A Prometheus text exposition's samples (comments and blank lines skipped). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The counters of one model that the breakdown needs, summed over its versions. */
interface Counters {
  requests: Map<string, number>;
  batchSizes: Map<string, number>;
  queue: { sum: number; count: number };
  phases: Map<string, { sum: number; count: number }>;
}

function countersOf(samples: Sample[], model: string): Counters {
  const counters: Counters = { requests: new Map(), batchSizes: new Map(), queue: { sum: 0, count: 0 }, phases: new Map() };
  const add = (map: Map<string, number>, key: string, value: number) => map.set(key, (map.get(key) ?? 0) + value);
  for (const { name, labels, value } of samples) {
    if (labels.model_name !== model) continue;
    if (name === 'kiln_requests_total') add(counters.requests, labels.status ?? '?', value);
    else if (name === 'kiln_batches_total') add(counters.batchSizes, labels.batch_size ?? '?', value);
    else if (name === 'kiln_queue_seconds_sum') counters.queue.sum += value;
    else if (name === 'kiln_queue_seconds_count') counters.queue.count += value;
    else if (name === 'kiln_batch_seconds_sum' || name === 'kiln_batch_seconds_count') {
      const phase = counters.phases.get(labels.phase ?? '?') ?? { sum: 0, count: 0 };
      phase[name.endsWith('_sum') ? 'sum' : 'count'] += value;
      counters.phases.set(labels.phase ?? '?', phase);
    }
  }
  return counters;
}

/** What changed for `model` between two readings of /metrics. */
export function breakdown(before: Sample[], after: Sample[], model: string): ServerBreakdown {
  const a = countersOf(before, model);
  const b = countersOf(after, model);
  const delta = (from: Map<string, number>, to: Map<string, number>) => {
    const out: Record<string, number> = {};
    for (const [key, value] of to) if (value - (from.get(key) ?? 0) > 0) out[key] = value - (from.get(key) ?? 0);
    return out;
  };
  const batchSizes = delta(a.batchSizes, b.batchSizes);
  const batches = Object.values(batchSizes).reduce((sum, n) => sum + n, 0);
  const batched = Object.entries(batchSizes).reduce((sum, [size, n]) => sum + Number(size) * n, 0);
  const meanMs = (from: { sum: number; count: number } | undefined, to: { sum: number; count: number } | undefined) => {
    const count = (to?.count ?? 0) - (from?.count ?? 0);
    return count > 0 ? (((to?.sum ?? 0) - (from?.sum ?? 0)) / count) * 1000 : undefined;
  };
  const phase = (name: string) => meanMs(a.phases.get(name), b.phases.get(name));
  const total = phase('total');
  const handler = { preprocess: phase('preprocess'), inference: phase('inference'), postprocess: phase('postprocess') };
  return {
    requests: delta(a.requests, b.requests),
    batches,
    batchSizes,
    meanBatchSize: batches > 0 ? batched / batches : 0,
    queueMs: meanMs(a.queue, b.queue) ?? null,
    batchMs:
      total === undefined
        ? null
        : {
            total,
            ...Object.fromEntries(Object.entries(handler).filter((entry): entry is [string, number] => entry[1] !== undefined)),
          },
  };
}
