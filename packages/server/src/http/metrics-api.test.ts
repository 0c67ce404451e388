import { describe, expect, test } from 'vitest';
import type { MetricSample } from '@kiln/handler-sdk/runtime';
import { createMetrics } from '@kiln/handler-sdk/worker';
import { ModelRegistry } from '../registry/registry.js';
import { ServerMetrics } from './metrics-api.js';

/** The handler side (createMetrics) feeding the server side, as a worker does. */
function recorder() {
  const server = new ServerMetrics();
  const metrics = createMetrics('ocr', '1.0', (sample: MetricSample) => server.recordSample(sample));
  const text = () => server.render(new ModelRegistry());
  return { metrics, text };
}

describe("the handlers' metrics", () => {
  test('a histogram has real cumulative buckets, +Inf, _sum and _count', () => {
    const { metrics, text } = recorder();
    const latency = metrics.histogram('ocr_decode_seconds', 'Time to decode an image.', [0.01, 0.1, 1]);
    for (const v of [0.004, 0.05, 0.05, 0.7, 3]) latency.observe(v);
    const labels = 'model_name="ocr",model_version="1.0"';
    expect(text()).toContain(
      [
        '# HELP ocr_decode_seconds Time to decode an image.',
        '# TYPE ocr_decode_seconds histogram',
        `ocr_decode_seconds_bucket{${labels},le="0.01"} 1`,
        `ocr_decode_seconds_bucket{${labels},le="0.1"} 3`,
        `ocr_decode_seconds_bucket{${labels},le="1"} 4`,
        `ocr_decode_seconds_bucket{${labels},le="+Inf"} 5`,
        `ocr_decode_seconds_sum{${labels}} 3.804`,
        `ocr_decode_seconds_count{${labels}} 5`,
      ].join('\n'),
    );
  });

  test("a family's samples are written together, whatever order they came in", () => {
    const { metrics, text } = recorder();
    const pages = metrics.counter('ocr_pages_total', 'Pages read.');
    const words = metrics.gauge('ocr_words', 'Words on the last page.');
    pages.inc(1, { lang: 'en' });
    words.set(12);
    pages.inc(2, { lang: 'de' });
    pages.inc(1, { lang: 'en' });
    const lines = text().split('\n');
    const at = lines.indexOf('# TYPE ocr_pages_total counter');
    expect(lines.slice(at + 1, at + 3)).toEqual([
      'ocr_pages_total{lang="en",model_name="ocr",model_version="1.0"} 2',
      'ocr_pages_total{lang="de",model_name="ocr",model_version="1.0"} 2',
    ]);
    expect(lines.filter((l) => l.startsWith('# TYPE ocr_'))).toEqual(['# TYPE ocr_pages_total counter', '# TYPE ocr_words gauge']);
  });

  test('histogram buckets must ascend', () => {
    const { metrics } = recorder();
    expect(() => metrics.histogram('bad_seconds', undefined, [1, 0.5])).toThrow(
      'histogram "bad_seconds" needs buckets: finite upper bounds in ascending order, received [1,0.5]',
    );
  });
});
