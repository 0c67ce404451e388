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
 * goes to `sink`: the worker forwards samples to the server's metrics endpoint.
 */
export function createMetrics(modelName: string, modelVersion: string, sink: MetricSink): Metrics {
  const base = { model_name: modelName, model_version: modelVersion };
  const emit = (kind: MetricSample['kind'], name: string, help: string | undefined, buckets?: readonly number[]) => {
    if (!NAME.test(name)) throw new TypeError(`metric name "${name}" must match ${NAME}`);
    const extra = buckets === undefined ? {} : { buckets };
    return (value: number, labels: Labels = {}) => sink({ kind, name, help, value, labels: { ...labels, ...base }, ...extra });
  };
  return {
    counter(name, help): Counter {
      const record = emit('counter', name, help);
      return { inc: (value = 1, labels) => record(value, labels) };
    },
    gauge(name, help): Gauge {
      return { set: emit('gauge', name, help) };
    },
    histogram(name, help, buckets = DEFAULT_BUCKETS): Histogram {
      if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))) {
        throw new TypeError(
          `histogram "${name}" needs buckets: finite upper bounds in ascending order, received ${JSON.stringify(buckets)}`,
        );
      }
      return { observe: emit('histogram', name, help, [...buckets]) };
    },
  };
}
