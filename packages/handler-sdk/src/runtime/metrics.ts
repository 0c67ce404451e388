import type { Counter, Gauge, Histogram, Labels, Metrics } from '../handler/types.js';

export interface MetricSample {
  kind: 'counter' | 'gauge' | 'histogram';
  name: string;
  help: string | undefined;
  value: number;
  labels: Labels;
  /** A histogram's bucket upper bounds, ascending. */
  buckets?: readonly number[];
}

/** Prometheus's default histogram buckets: seconds, from 5 ms to 10 s. */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

export type MetricSink = (sample: MetricSample) => void;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/**
 * Custom metrics for a handler. Each sample carries `model_name` and `model_version` labels and
 * goes to `sink`: the worker forwards samples to the server's metrics endpoint. A name is one
 * metric: declaring it again as another type throws, naming both places; an instrument's label
 * names are fixed by its first sample.
 */
export function createMetrics(modelName: string, modelVersion: string, sink: MetricSink): Metrics {
  const base = { model_name: modelName, model_version: modelVersion };
  const declared = new Map<string, { kind: MetricSample['kind']; where: string }>();
  const declare = (kind: MetricSample['kind'], name: string, help: string | undefined, buckets?: readonly number[]) => {
    if (!NAME.test(name)) throw new TypeError(`metric name "${name}" must match ${NAME}`);
    const where = callSite();
    const first = declared.get(name);
    if (first !== undefined && first.kind !== kind) {
      throw new TypeError(
        `metric "${name}" is declared as ${A[first.kind]} at ${first.where} and as ${A[kind]} at ${where}; one name is one metric, so give the second another name`,
      );
    }
    if (first === undefined) declared.set(name, { kind, where });
    const extra = buckets === undefined ? {} : { buckets };
    let names: string | undefined;
    return (value: number, labels: Labels = {}) => {
      if (!Number.isFinite(value) || (kind === 'counter' && value < 0)) {
        throw new TypeError(
          `metric "${name}" was given ${value}; ${kind === 'counter' ? 'a counter only goes up: inc() takes a finite number ≥ 0' : 'send a finite number'}`,
        );
      }
      // Prometheus wants every series of a family to have the same label names.
      const these = Object.keys(labels).sort().join(', ');
      if (names === undefined) names = these;
      else if (these !== names) {
        throw new TypeError(
          `metric "${name}" was recorded with labels [${names}] and now with [${these}]; use the same label names every time`,
        );
      }
      sink({ kind, name, help, value, labels: { ...labels, ...base }, ...extra });
    };
  };
  return {
    counter(name, help): Counter {
      const record = declare('counter', name, help);
      return { inc: (value = 1, labels) => record(value, labels) };
    },
    gauge(name, help): Gauge {
      return { set: declare('gauge', name, help) };
    },
    histogram(name, help, buckets = DEFAULT_BUCKETS): Histogram {
      if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))) {
        throw new TypeError(
          `histogram "${name}" needs buckets: finite upper bounds in ascending order, received ${JSON.stringify(buckets)}`,
        );
      }
      return { observe: declare('histogram', name, help, [...buckets]) };
    },
  };
}

const A = { counter: 'a counter', gauge: 'a gauge', histogram: 'a histogram' } as const;

/** "handler.ts:12:20": where the handler called counter(), gauge() or histogram(). */
function callSite(): string {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  // The first frame outside this file is the handler's (source maps make it the .ts line).
  const frame = frames.find((line) => !THIS_FILE.some((path) => line.includes(path))) ?? frames[0] ?? '';
  const location = /\(?((?:file:\/\/)?[^()\s]+:\d+:\d+)\)?\s*$/.exec(frame)?.[1];
  return location === undefined ? 'an unknown place' : location.replace(/^file:\/\//, '');
}

/** This module, compiled and (where a source map points there) as source. */
const THIS_FILE = [new URL('metrics.', import.meta.url).pathname, new URL('../../src/runtime/metrics.', import.meta.url).pathname];
