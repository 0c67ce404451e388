import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { MetricSample } from '@kiln/handler-sdk/runtime';

interface Family {
  kind: MetricSample['kind'];
  /** The model that declared it first, for messages. */
  model: string;
  labelNames: string[];
  buckets: readonly number[] | undefined;
  metric: Counter | Gauge | Histogram;
}

const A = { counter: 'a counter', gauge: 'a gauge', histogram: 'a histogram' } as const;

/**
 * The metrics handlers record with `context.metrics`, as families of the server's registry. A
 * family is made by its first sample, which fixes its type, label names and buckets; a later
 * sample that disagrees (another model using the name for another type, say) is refused and
 * reported once, naming both, and never mixed in.
 */
export class HandlerMetrics {
  private readonly families = new Map<string, Family>();
  private readonly refused = new Set<string>();

  constructor(
    private readonly registry: Registry,
    private readonly onRefused: (message: string) => void = () => {},
  ) {}

  record(sample: MetricSample): void {
    const model = `${sample.labels.model_name ?? '?'} ${sample.labels.model_version ?? '?'}`;
    let family = this.families.get(sample.name);
    if (family === undefined) {
      if (this.registry.getSingleMetric(sample.name) !== undefined) {
        return this.refuse(sample.name, `model ${model} records metric "${sample.name}", a name Kiln uses itself; choose another name`);
      }
      family = this.create(sample, model);
    }
    const mismatch = this.mismatch(family, sample);
    if (mismatch !== undefined) {
      return this.refuse(
        `${sample.name}\u0000${mismatch}`,
        `metric "${sample.name}" was declared by model ${family.model} as ${A[family.kind]}${mismatch === 'type' ? '' : ` with ${this.describe(family, mismatch)}`}, and model ${model} records it as ${A[sample.kind]}${mismatch === 'type' ? '' : ` with ${this.describe({ labelNames: labelNames(sample), buckets: sample.buckets }, mismatch)}`}; its samples are dropped. One name is one metric: give them different names, or the same type, labels and buckets`,
      );
    }
    const { metric } = family;
    // The SDK checks values before they leave the worker; a sample that is wrong anyway (from an
    // older SDK, say) is refused here, never thrown into the server's event loop.
    if (!Number.isFinite(sample.value) || (sample.kind === 'counter' && sample.value < 0)) {
      return this.refuse(
        `${sample.name}\u0000value`,
        `model ${model} recorded ${sample.value} for metric "${sample.name}" (${A[sample.kind]}); dropped`,
      );
    }
    if (metric instanceof Counter) metric.inc(sample.labels, sample.value);
    else if (metric instanceof Gauge) metric.set(sample.labels, sample.value);
    else metric.observe(sample.labels, sample.value);
  }

  private create(sample: MetricSample, model: string): Family {
    const options = {
      name: sample.name,
      help: sample.help ?? 'Recorded by a handler.',
      labelNames: labelNames(sample),
      registers: [this.registry],
    };
    const metric =
      sample.kind === 'counter'
        ? new Counter(options)
        : sample.kind === 'gauge'
          ? new Gauge(options)
          : new Histogram({ ...options, buckets: [...(sample.buckets ?? [])] });
    const family = { kind: sample.kind, model, labelNames: options.labelNames, buckets: sample.buckets, metric };
    this.families.set(sample.name, family);
    return family;
  }

  private mismatch(family: Family, sample: MetricSample): 'type' | 'labels' | 'buckets' | undefined {
    if (family.kind !== sample.kind) return 'type';
    const names = labelNames(sample);
    if (names.length !== family.labelNames.length || names.some((n, i) => n !== family.labelNames[i])) return 'labels';
    const a = family.buckets ?? [];
    const b = sample.buckets ?? [];
    if (a.length !== b.length || a.some((x, i) => x !== b[i])) return 'buckets';
    return undefined;
  }

  private describe(family: Pick<Family, 'labelNames' | 'buckets'>, what: 'labels' | 'buckets'): string {
    return what === 'labels' ? `labels [${family.labelNames.join(', ')}]` : `buckets [${(family.buckets ?? []).join(', ')}]`;
  }

  private refuse(key: string, message: string): void {
    if (this.refused.has(key)) return;
    this.refused.add(key);
    this.onRefused(message);
  }
}

const labelNames = (sample: Pick<MetricSample, 'labels'>): string[] => Object.keys(sample.labels).sort();
