import { describe, expect, test } from 'vitest';
import { Samples, percentile } from './latency.js';
import { breakdown, parseMetrics } from './server-metrics.js';

const model = 'model_name="cls",model_version="1"';
const before = `# HELP kiln_requests_total Inference requests answered, by model and HTTP status.
# TYPE kiln_requests_total counter
kiln_requests_total{${model},status="200"} 10
kiln_requests_total{model_name="other",model_version="1",status="200"} 99
kiln_batches_total{${model},batch_size="1"} 10
kiln_queue_seconds_bucket{${model},le="+Inf"} 10
kiln_queue_seconds_sum{${model}} 0.01
kiln_queue_seconds_count{${model}} 10
kiln_batch_seconds_sum{${model},phase="inference"} 0.02
kiln_batch_seconds_count{${model},phase="inference"} 10
kiln_batch_seconds_sum{${model},phase="total"} 0.03
kiln_batch_seconds_count{${model},phase="total"} 10
`;
const after = `kiln_requests_total{${model},status="200"} 40
kiln_requests_total{${model},status="503"} 2
kiln_requests_total{model_name="other",model_version="1",status="200"} 500
kiln_batches_total{${model},batch_size="1"} 14
kiln_batches_total{${model},batch_size="4"} 7
kiln_queue_seconds_sum{${model}} 0.074
kiln_queue_seconds_count{${model}} 42
kiln_batch_seconds_sum{${model},phase="inference"} 0.042
kiln_batch_seconds_count{${model},phase="inference"} 21
kiln_batch_seconds_sum{${model},phase="total"} 0.074
kiln_batch_seconds_count{${model},phase="total"} 21
`;

describe('the server-side breakdown', () => {
  test('parses Prometheus text: names, escaped label values, numbers; skips comments', () => {
    const samples = parseMetrics('# HELP x y\nx_total{a="q\\"uote",b="new\\nline"} 3.5\nup 1\n\n');
    expect(samples).toEqual([
      { name: 'x_total', labels: { a: 'q"uote', b: 'new\nline' }, value: 3.5 },
      { name: 'up', labels: {}, value: 1 },
    ]);
  });

  test('is the difference between two readings, for the model alone: batches by size, mean queue, mean phases', () => {
    const result = breakdown(parseMetrics(before), parseMetrics(after), 'cls');
    expect(result.requests).toEqual({ 200: 30, 503: 2 });
    expect(result.batchSizes).toEqual({ 1: 4, 4: 7 });
    expect(result.batches).toBe(11);
    expect(result.meanBatchSize).toBeCloseTo(32 / 11, 12);
    expect(result.queueMs).toBeCloseTo((0.064 / 32) * 1000, 12);
    expect(result.batchMs!.total).toBeCloseTo((0.044 / 11) * 1000, 12);
    expect(result.batchMs!.inference).toBeCloseTo((0.022 / 11) * 1000, 12);
    // Phases the handler did not time are absent, not 0.
    expect(result.batchMs).not.toHaveProperty('preprocess');
  });

  test('a model with no traffic between the readings has no batches and no timings', () => {
    const result = breakdown(parseMetrics(before), parseMetrics(before), 'cls');
    expect(result).toEqual({ requests: {}, batches: 0, batchSizes: {}, meanBatchSize: 0, queueMs: null, batchMs: null });
  });
});

describe('latency percentiles', () => {
  test('nearest rank over the sorted samples: p50 of 1..100 is 50, p99 is 99, max 100', () => {
    const samples = new Samples();
    // More than the initial capacity, in reverse order: storage grows and sorting happens.
    for (let i = 20_000; i >= 1; i--) samples.push(i / 200);
    expect(samples.summary()).toEqual({ mean: 50.0025, p50: 50, p90: 90, p99: 99, max: 100 });
    expect(percentile(Float64Array.of(7), 99)).toBe(7);
    expect(new Samples().summary()).toBeNull();
  });
});
