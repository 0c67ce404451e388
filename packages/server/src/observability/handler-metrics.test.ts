import { describe, expect, test } from 'vitest';
import type { MetricSample } from '@kiln/handler-sdk/runtime';
import { createMetrics } from '@kiln/handler-sdk/worker';
import { ServerMetrics } from './server-metrics.js';

/** The handler side (createMetrics) feeding the server side, as a worker does. */
function recorder() {
  const refused: string[] = [];
  const server = new ServerMetrics({
    latencyBuckets: [0.01, 0.1],
    batchSizeBuckets: [1, 2],
    torchserveMetrics: false,
    onRefused: (message) => refused.push(message),
  });
  const sink = (sample: MetricSample) => server.recordSample(sample);
  const metrics = createMetrics('ocr', '1.0', sink);
  /** The sample lines of one family, in the order written. */
  const lines = async (name: string) => (await server.render([name])).split('\n').filter((line) => line !== '' && !line.startsWith('#'));
  return { server, metrics, sink, lines, refused };
}

describe("the handlers' metrics", () => {
  test('a histogram has real cumulative buckets, +Inf, _sum and _count', async () => {
    const { metrics, lines, server } = recorder();
    const latency = metrics.histogram('ocr_decode_seconds', 'Time to decode an image.', [0.01, 0.1, 1]);
    for (const v of [0.004, 0.05, 0.05, 0.7, 3]) latency.observe(v);
    const labels = 'model_name="ocr",model_version="1.0"';
    expect(await lines('ocr_decode_seconds')).toEqual([
      `ocr_decode_seconds_bucket{le="0.01",${labels}} 1`,
      `ocr_decode_seconds_bucket{le="0.1",${labels}} 3`,
      `ocr_decode_seconds_bucket{le="1",${labels}} 4`,
      `ocr_decode_seconds_bucket{le="+Inf",${labels}} 5`,
      `ocr_decode_seconds_sum{${labels}} 3.804`,
      `ocr_decode_seconds_count{${labels}} 5`,
    ]);
    expect(await server.render(['ocr_decode_seconds'])).toContain(
      '# HELP ocr_decode_seconds Time to decode an image.\n# TYPE ocr_decode_seconds histogram',
    );
  });

  test("a family's samples are written together, whatever order they came in", async () => {
    const { metrics, server } = recorder();
    const pages = metrics.counter('ocr_pages_total', 'Pages read.');
    const words = metrics.gauge('ocr_words', 'Words on the last page.');
    pages.inc(1, { lang: 'en' });
    words.set(12);
    pages.inc(2, { lang: 'de' });
    pages.inc(1, { lang: 'en' });
    const text = (await server.render()).split('\n');
    const at = text.indexOf('# TYPE ocr_pages_total counter');
    expect(text.slice(at + 1, at + 3)).toEqual([
      'ocr_pages_total{lang="en",model_name="ocr",model_version="1.0"} 2',
      'ocr_pages_total{lang="de",model_name="ocr",model_version="1.0"} 2',
    ]);
    expect(text).toContain('ocr_words{model_name="ocr",model_version="1.0"} 12');
  });

  test('declaring one name as two types in a handler throws, naming both places', () => {
    const { metrics } = recorder();
    metrics.counter('ocr_pages', 'Pages read.');
    let message = '';
    try {
      metrics.gauge('ocr_pages');
    } catch (error) {
      message = (error as Error).message;
    }
    // Both places are this file: the first declaration, then the second, each with its line.
    expect(message).toMatch(
      /^metric "ocr_pages" is declared as a counter at .*handler-metrics\.test\.ts:\d+:\d+ and as a gauge at .*handler-metrics\.test\.ts:\d+:\d+; one name is one metric/,
    );
    const [first, second] = [...message.matchAll(/handler-metrics\.test\.ts:(\d+)/g)].map((m) => Number(m[1]));
    expect(second! - first!).toBe(3);
    expect(() => metrics.counter('ocr_pages')).not.toThrow(); // the same type again is the same metric
  });

  test('an instrument keeps the label names of its first sample', () => {
    const { metrics } = recorder();
    const pages = metrics.counter('ocr_pages_total');
    pages.inc(1, { lang: 'en' });
    expect(() => pages.inc(1, { language: 'en' })).toThrow(
      'metric "ocr_pages_total" was recorded with labels [lang] and now with [language]; use the same label names every time',
    );
  });

  test("another model's sample that disagrees is refused once, named, and never mixed in", async () => {
    const { metrics, sink, lines, refused } = recorder();
    metrics.counter('shared_total').inc(2);
    const other = createMetrics('det', '2', sink);
    other.gauge('shared_total').set(5);
    other.gauge('shared_total').set(6);
    other.histogram('ocr_seconds', undefined, [1]).observe(0.5);
    createMetrics('third', '1', sink).histogram('ocr_seconds', undefined, [1, 2]).observe(0.5);
    other.counter('kiln_requests_total').inc();
    expect(refused).toEqual([
      'metric "shared_total" was declared by model ocr 1.0 as a counter, and model det 2 records it as a gauge; its samples are dropped. One name is one metric: give them different names, or the same type, labels and buckets',
      'metric "ocr_seconds" was declared by model det 2 as a histogram with buckets [1], and model third 1 records it as a histogram with buckets [1, 2]; its samples are dropped. One name is one metric: give them different names, or the same type, labels and buckets',
      'model det 2 records metric "kiln_requests_total", a name Kiln uses itself; choose another name',
    ]);
    expect(await lines('shared_total')).toEqual(['shared_total{model_name="ocr",model_version="1.0"} 2']);
    expect(await lines('ocr_seconds')).toContain('ocr_seconds_count{model_name="det",model_version="2"} 1');
  });

  test('histogram buckets must ascend', () => {
    const { metrics } = recorder();
    expect(() => metrics.histogram('bad_seconds', undefined, [1, 0.5])).toThrow(
      'histogram "bad_seconds" needs buckets: finite upper bounds in ascending order, received [1,0.5]',
    );
  });
});

test('?name[]= keeps the families named, in the order asked, and skips unknown names', async () => {
  const { server } = recorder();
  const text = await server.render(['kiln_queue_seconds', 'no_such_family', 'kiln_requests_total']);
  expect([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1])).toEqual(['kiln_queue_seconds', 'kiln_requests_total']);
  expect(await server.render(['no_such_family'])).toBe('');
});

test('a counter only goes up, and every value is finite: the SDK throws in the handler, the server drops what gets past', async () => {
  const { metrics, server, lines, refused } = recorder();
  const pages = metrics.counter('ocr_pages_total');
  expect(() => pages.inc(-1)).toThrow('metric "ocr_pages_total" was given -1; a counter only goes up: inc() takes a finite number ≥ 0');
  expect(() => metrics.gauge('ocr_load').set(NaN)).toThrow('metric "ocr_load" was given NaN; send a finite number');
  pages.inc(2);
  // A sample from an older SDK: refused and reported, and the server carries on.
  server.recordSample({
    kind: 'counter',
    name: 'ocr_pages_total',
    help: undefined,
    value: -5,
    labels: { model_name: 'ocr', model_version: '1.0' },
  });
  expect(refused).toEqual(['model ocr 1.0 recorded -5 for metric "ocr_pages_total" (a counter); dropped']);
  expect(await lines('ocr_pages_total')).toEqual(['ocr_pages_total{model_name="ocr",model_version="1.0"} 2']);
});
