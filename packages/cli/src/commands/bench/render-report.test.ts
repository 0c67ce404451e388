import { describe, expect, it } from 'vitest';
import type { BenchReport, LevelResult } from './report-types.js';
import { renderHtml, renderMarkdown, renderText } from './render-report.js';

const report: BenchReport = {
  schemaVersion: 1,
  kilnVersion: '0.1.0',
  startedAt: '2025-03-14T09:26:53.589Z',
  target: { kind: 'url', url: 'http://127.0.0.1:8080', model: 'resnet18', metricsUrl: 'http://127.0.0.1:8082/metrics' },
  protocol: 'v2-binary',
  input: { source: 'file', file: 'inputs/cat.bin', bytes: 602112, description: 'input "data" FP32 [1, 3, 224, 224]' },
  settings: { concurrency: [1, 4, 16], durationS: 30, warmupS: 5, timeoutMs: 10000 },
  machine: { cpus: 8, cpuModel: 'AMD EPYC 7R13 Processor', node: 'v20.20.2', platform: 'linux x64' },
  levels: [
    {
      concurrency: 1,
      requests: 500,
      successes: 500,
      errors: {},
      durationS: 2.04,
      throughput: 245.26,
      latencyMs: { mean: 4.1, p50: 3.984, p90: 5.121, p99: 9.87, max: 14.23 },
      server: {
        requests: { '200': 500 },
        batches: 500,
        batchSizes: { '1': 500 },
        meanBatchSize: 1,
        queueMs: 0.05,
        batchMs: { preprocess: 0.5, inference: 3.1, postprocess: 0.2, total: 3.9 },
      },
    },
    {
      concurrency: 4,
      requests: 1204,
      successes: 1200,
      errors: { timeout: 1, '503': 3 },
      durationS: 3,
      throughput: 400.04,
      latencyMs: { mean: 10, p50: 9.5, p90: 12.345, p99: 30.06, max: 101.27 },
      server: null,
    },
    {
      concurrency: 16,
      requests: 2000,
      successes: 2000,
      errors: {},
      durationS: 3.28,
      throughput: 610.44,
      latencyMs: { mean: 26, p50: 25.04, p90: 31.5, p99: 48.71, max: 60 },
      server: {
        requests: { '200': 2000 },
        batches: 180,
        batchSizes: { '8': 40, '1': 120, '4': 20 },
        meanBatchSize: 2.89,
        queueMs: 1.234,
        batchMs: { inference: 12.5, total: 14.01 },
      },
    },
  ],
  warnings: ['4 requests failed at concurrency 4: 503×3, timeout×1', 'could not read http://127.0.0.1:8082/metrics at concurrency 4'],
};

function withLevels(levels: LevelResult[]): BenchReport {
  return { ...report, settings: { ...report.settings, concurrency: levels.map((level) => level.concurrency) }, levels };
}

/** The markdown table that follows `heading`, as rows of cells, header and rule left out. */
function markdownRows(markdown: string, heading: string): string[][] {
  const section = markdown.split(`${heading}\n\n`)[1] ?? '';
  const lines = section.split('\n\n')[0]?.split('\n') ?? [];
  return lines.slice(2).map((line) => line.slice(2, -2).split(' | '));
}

function figure(html: string, chart: string): string {
  return html.match(new RegExp(`<figure data-chart="${chart}">[\\s\\S]*?</figure>`))?.[0] ?? '';
}

function yTicks(svg: string): number[] {
  const axis = svg.match(/<g class="y-axis">([\s\S]*?)<\/g>/)?.[1] ?? '';
  return [...axis.matchAll(/>([^<]*)<\/text>/g)].map((match) => Number(match[1]));
}

function isNiceStep(step: number): boolean {
  const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
  return [1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-9);
}

function titles(svg: string): string[] {
  return [...svg.matchAll(/<title>([^<]*)<\/title>/g)].map((match) => match[1] ?? '');
}

describe('renderMarkdown', () => {
  const markdown = renderMarkdown(report);

  it('heads the report with the model and how it was measured', () => {
    expect(markdown.startsWith('# kiln bench: resnet18\n')).toBe(true);
    expect(markdown).toContain('**Target:** http://127.0.0.1:8080, a running server.');
    expect(markdown).toContain('**Protocol:** v2-binary.');
    expect(markdown).toContain('input "data" FP32 [1, 3, 224, 224] (read from inputs/cat.bin, 602112 bytes)');
    expect(markdown).toContain('concurrency 1, 4, 16; 30 s per level after a 5 s warm-up; 10000 ms timeout');
    expect(markdown).toContain('8 × AMD EPYC 7R13 Processor, linux x64, Node v20.20.2');
    expect(markdown).toContain('2025-03-14T09:26:53.589Z');
  });

  it('has one results row per level, formatted to the stated precision', () => {
    expect(markdownRows(markdown, '## Results')).toEqual([
      ['1', '500', '500', '0', '245.3', '3.98', '5.12', '9.87', '14.2', '1.00'],
      ['4', '1204', '1200', '503×3, timeout×1', '400.0', '9.50', '12.3', '30.1', '101.3', '—'],
      ['16', '2000', '2000', '0', '610.4', '25.0', '31.5', '48.7', '60.0', '2.89'],
    ]);
  });

  it('shows the server side per level, with a dash and a note where it could not be read', () => {
    expect(markdownRows(markdown, '## Server side')).toEqual([
      ['1', '0.05', '0.50', '3.10', '0.20', '3.90', '500', '1×500'],
      ['4', '—', '—', '—', '—', '—', '—', '—'],
      ['16', '1.23', '—', '12.5', '—', '14.0', '180', '1×120, 4×20, 8×40'],
    ]);
    expect(markdown).toContain("The server's figures could not be read at concurrency 4");
  });

  it('ends with the warnings, and leaves the section out when there are none', () => {
    expect(
      markdown.endsWith(
        '## Warnings\n\n- 4 requests failed at concurrency 4: 503×3, timeout×1\n- could not read http://127.0.0.1:8082/metrics at concurrency 4\n',
      ),
    ).toBe(true);
    expect(renderMarkdown({ ...report, warnings: [] })).not.toContain('Warnings');
  });

  it('describes a request count and an archive target', () => {
    const other = renderMarkdown({
      ...report,
      target: { kind: 'archive', url: 'http://127.0.0.1:41873', archive: 'store/resnet18.kiln', model: 'resnet18' },
      settings: { ...report.settings, durationS: undefined, requests: 200 },
    });
    expect(other).toContain('store/resnet18.kiln, served by kiln bench at http://127.0.0.1:41873');
    expect(other).toContain('200 requests per level');
  });
});

describe('renderText', () => {
  const text = renderText(report);
  const lines = text.split('\n');

  it('prints a header and one aligned line per level, then the warnings', () => {
    expect(text.endsWith('\n')).toBe(true);
    expect(lines.slice(0, 4)).toEqual([
      ' c  requests  errors  req/s  p50 ms  p90 ms  p99 ms  max ms  mean batch',
      ' 1       500       0  245.3    3.98    5.12    9.87    14.2        1.00',
      ' 4      1204       4  400.0    9.50    12.3    30.1   101.3           —',
      '16      2000       0  610.4    25.0    31.5    48.7    60.0        2.89',
    ]);
    expect(lines.slice(4)).toEqual([...report.warnings.map((warning) => `warning: ${warning}`), '']);
  });

  it('keeps every column right-aligned under its header', () => {
    const table = lines.slice(0, 4);
    expect(new Set(table.map((line) => line.length)).size).toBe(1);
    const header = table[0] ?? '';
    // Every header ends a column, so each data line has a character exactly where each header ends.
    for (const match of header.matchAll(/\S+( \S+)?(?=\s{2}|$)/g)) {
      const end = (match.index ?? 0) + match[0].length - 1;
      for (const line of table) expect(line[end]).not.toBe(' ');
    }
  });
});

describe('renderHtml', () => {
  const html = renderHtml(report);

  it('is one self-contained HTML5 document', () => {
    expect(html.startsWith('<!doctype html>\n')).toBe(true);
    expect(html).toContain('<meta charset="utf-8">');
    expect(html).toContain('<title>kiln bench: resnet18</title>');
    expect(html.match(/<style>/g)).toHaveLength(1);
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
    for (const external of ['src=', 'href=', '<link', '<script', '@import', 'url(', '@font-face']) expect(html).not.toContain(external);
  });

  it('carries the same tables and warnings as the markdown', () => {
    expect(html).toContain('<td class="num">245.3</td><td class="num">3.98</td>');
    expect(html).toContain('<td>503×3, timeout×1</td>');
    expect(html).toContain('<td>1×120, 4×20, 8×40</td>');
    expect(html).toContain('<li>could not read http://127.0.0.1:8082/metrics at concurrency 4</li>');
  });

  it('has exactly three charts, each an accessible svg in a captioned figure', () => {
    expect([...html.matchAll(/data-chart="([^"]+)"/g)].map((match) => match[1])).toEqual(['throughput', 'latency', 'batch-sizes']);
    for (const chart of ['throughput', 'latency', 'batch-sizes']) {
      const body = figure(html, chart);
      expect(body).toMatch(/<svg viewBox="0 0 640 \d+" role="img" aria-label="[^"]+">/);
      expect(body).toContain('<figcaption>');
    }
  });

  it('plots one throughput point per level, titled with its value, higher for more throughput', () => {
    const svg = figure(html, 'throughput');
    expect(titles(svg)).toEqual(['concurrency 1: 245.3 req/s', 'concurrency 4: 400.0 req/s', 'concurrency 16: 610.4 req/s']);
    const heights = [...svg.matchAll(/<circle cx="[\d.]+" cy="([\d.]+)"/g)].map((match) => Number(match[1]));
    expect(heights).toHaveLength(3);
    expect(heights).toEqual([...heights].sort((a, b) => b - a));
    expect([...svg.matchAll(/<g class="x-axis">([\s\S]*?)<\/g>/g)][0]?.[1]).toMatch(/>1<[\s\S]*>4<[\s\S]*>16</);
  });

  it('labels the y axis from 0 with nice, even ticks that reach the highest value', () => {
    for (const [chart, max] of [
      ['throughput', 610.44],
      ['latency', 101.27],
    ] as const) {
      const ticks = yTicks(figure(html, chart));
      expect(ticks[0]).toBe(0);
      expect(ticks.length).toBeGreaterThanOrEqual(4);
      expect(ticks.length).toBeLessThanOrEqual(8);
      const step = (ticks[1] ?? 0) - (ticks[0] ?? 0);
      expect(isNiceStep(step)).toBe(true);
      ticks.forEach((tick, i) => expect(tick).toBeCloseTo(i * step, 9));
      expect(ticks.at(-1)).toBeGreaterThanOrEqual(max);
    }
  });

  it('draws a line per latency percentile with a legend', () => {
    const svg = figure(html, 'latency');
    for (const key of ['p50', 'p90', 'p99', 'max']) {
      const series = svg.match(new RegExp(`<g class="series" data-series="${key}">([\\s\\S]*?)</g>`))?.[1] ?? '';
      expect(series.match(/<circle/g)).toHaveLength(3);
      expect(svg).toContain(`>${key}</text>`);
    }
    expect(titles(svg)).toContain('concurrency 4, max: 101.3 ms');
  });

  it('shows the batch-size shares of the levels the server reported', () => {
    const svg = figure(html, 'batch-sizes');
    expect(titles(svg)).toEqual([
      'concurrency 1, batch size 1: 500 of 500 batches (100.0%)',
      'concurrency 16, batch size 1: 120 of 180 batches (66.7%)',
      'concurrency 16, batch size 4: 20 of 180 batches (11.1%)',
      'concurrency 16, batch size 8: 40 of 180 batches (22.2%)',
    ]);
    expect(svg).toContain('Not available at concurrency 4.');
  });

  it('says so instead of drawing batch sizes when no level has server figures', () => {
    const body = figure(renderHtml(withLevels(report.levels.map((level) => ({ ...level, server: null })))), 'batch-sizes');
    expect(body).not.toContain('<svg');
    expect(body).toContain('server-side figures were not available');
  });

  it('escapes every piece of text from the report', () => {
    const hostile = `<script>alert(1)</script> & "double" 'single'`;
    const level = report.levels[1] as LevelResult;
    const escaped = renderHtml({
      ...withLevels([{ ...level, errors: { '<b>': 2 } }]),
      target: { ...report.target, model: hostile },
      warnings: ['<img src=x onerror=alert(1)>'],
    });
    expect(escaped).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;double&quot; &#39;single&#39;');
    expect(escaped).toContain('&lt;b&gt;×2');
    expect(escaped).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(escaped).not.toContain('<script');
    expect(escaped).not.toContain('<img');
    expect(escaped).not.toContain('<b>');
    expect(renderMarkdown({ ...report, target: { ...report.target, model: hostile } })).not.toContain('<script');
  });
});

describe('edge cases', () => {
  const [first, second, third] = report.levels as [LevelResult, LevelResult, LevelResult];
  const cases: [string, BenchReport][] = [
    ['a single level', withLevels([first])],
    ['no successes anywhere', withLevels(report.levels.map((level) => ({ ...level, successes: 0, throughput: 0, latencyMs: null })))],
    ['throughput all 0', withLevels(report.levels.map((level) => ({ ...level, throughput: 0 })))],
    [
      'a level with no batches',
      withLevels([
        { ...third, server: { requests: {}, batches: 0, batchSizes: {}, meanBatchSize: 0, queueMs: null, batchMs: null } },
        second,
      ]),
    ],
    ['no levels', withLevels([])],
  ];

  it.each(cases)('renders %s without NaN, Infinity or undefined', (_name, edge) => {
    for (const output of [renderMarkdown(edge), renderText(edge), renderHtml(edge)]) {
      expect(output).not.toMatch(/NaN|Infinity|undefined|null/);
    }
    expect(figure(renderHtml(edge), 'throughput')).toBeTruthy();
  });

  it('keeps a nice axis when every value is 0', () => {
    const ticks = yTicks(figure(renderHtml(cases[2]?.[1] ?? report), 'throughput'));
    expect(ticks).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  it('skips levels without latencies in the latency chart', () => {
    const svg = figure(renderHtml(withLevels([first, { ...second, successes: 0, throughput: 0, latencyMs: null }])), 'latency');
    expect(titles(svg)).toEqual([
      'concurrency 1, p50: 3.98 ms',
      'concurrency 1, p90: 5.12 ms',
      'concurrency 1, p99: 9.87 ms',
      'concurrency 1, max: 14.2 ms',
    ]);
    expect(svg).toContain('No request succeeded at concurrency 4.');
  });
});
