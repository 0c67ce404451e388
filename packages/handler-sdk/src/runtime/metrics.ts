import type { Counter, Gauge, Histogram, Labels, Metrics } from '../handler/types.js';

export interface MetricSample {
  kind: 'counter' | 'gauge' | 'histogram';
  name: string;
  help: string | undefined;
  value: number;
  labels: Labels;
}

export type MetricSink = (sample: MetricSample) => void;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/**
 * Custom metrics for a handler. Each sample carries `model_name` and `model_version` labels and
 * goes to `sink`: the worker forwards samples to the server's metrics endpoint.
 */
export function createMetrics(modelName: string, modelVersion: string, sink: MetricSink): Metrics {
  const base = { model_name: modelName, model_version: modelVersion };
  const emit = (kind: MetricSample['kind'], name: string, help: string | undefined) => {
    if (!NAME.test(name)) throw new TypeError(`metric name "${name}" must match ${NAME}`);
    return (value: number, labels: Labels = {}) => sink({ kind, name, help, value, labels: { ...labels, ...base } });
  };
  return {
    counter(name, help): Counter {
      const record = emit('counter', name, help);
      return { inc: (value = 1, labels) => record(value, labels) };
    },
    gauge(name, help): Gauge {
      return { set: emit('gauge', name, help) };
    },
    histogram(name, help): Histogram {
      return { observe: emit('histogram', name, help) };
    },
  };
}
