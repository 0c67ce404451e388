/*
 * report.md, report.html and the terminal summary, rendered from a BenchReport and nothing else.
 * report.html is one self-contained file (inline CSS, inline SVG charts, no script, nothing fetched) so it
 * can be attached to an issue or opened from a CI artefact offline.
 */
import { DASH, errorCount, errorsText, fixed, meanBatch, ms, sizesText } from './format.js';
import type { BenchReport, LevelResult } from './report-types.js';
import { batchSizeChart, escapeHtml, latencyChart, throughputChart } from './svg-charts.js';

// What was measured, how, and where: the same label/value pairs head report.md and report.html.

function runFacts(report: BenchReport): [label: string, value: string][] {
  const { target, input, settings, machine } = report;
  const where =
    target.kind === 'archive'
      ? `${target.archive ?? 'an archive'}, served by kiln bench at ${target.url}`
      : `${target.url}, a running server`;
  const from = input.source === 'file' ? `read from ${input.file ?? 'a file'}` : 'generated';
  const amount = settings.durationS !== undefined ? `${settings.durationS} s` : `${settings.requests ?? DASH} requests`;
  return [
    ['Target', where],
    ['Protocol', report.protocol],
    ['Input', `${input.description} (${from}, ${input.bytes} bytes)`],
    [
      'Settings',
      `concurrency ${settings.concurrency.join(', ')}; ${amount} per level after a ${settings.warmupS} s warm-up; ${settings.timeoutMs} ms timeout`,
    ],
    ['Machine', `${machine.cpus} × ${machine.cpuModel}, ${machine.platform}, Node ${machine.node}`],
    ['Started', `${report.startedAt}, kiln ${report.kilnVersion}`],
  ];
}

type Align = 'left' | 'right';
interface Table {
  columns: [title: string, align: Align][];
  rows: string[][];
}

function resultsTable(levels: LevelResult[]): Table {
  return {
    columns: [
      ['Concurrency', 'right'],
      ['Requests', 'right'],
      ['Successes', 'right'],
      ['Errors', 'left'],
      ['Throughput (req/s)', 'right'],
      ['p50 (ms)', 'right'],
      ['p90 (ms)', 'right'],
      ['p99 (ms)', 'right'],
      ['Max (ms)', 'right'],
      ['Mean batch', 'right'],
    ],
    rows: levels.map((level) => {
      const latency = level.latencyMs;
      return [
        fixed(level.concurrency, 0),
        fixed(level.requests, 0),
        fixed(level.successes, 0),
        errorsText(level.errors),
        fixed(level.throughput, 1),
        ms(latency?.p50),
        ms(latency?.p90),
        ms(latency?.p99),
        ms(latency?.max),
        fixed(meanBatch(level), 2),
      ];
    }),
  };
}

function serverTable(levels: LevelResult[]): Table {
  return {
    columns: [
      ['Concurrency', 'right'],
      ['Queue (ms)', 'right'],
      ['Preprocess (ms)', 'right'],
      ['Inference (ms)', 'right'],
      ['Postprocess (ms)', 'right'],
      ['Total (ms)', 'right'],
      ['Batches', 'right'],
      ['Batch sizes', 'left'],
    ],
    rows: levels.map(({ concurrency, server }) => {
      if (server === null) return [fixed(concurrency, 0), ...Array<string>(7).fill(DASH)];
      const batch = server.batchMs;
      return [
        fixed(concurrency, 0),
        ms(server.queueMs),
        ms(batch?.preprocess),
        ms(batch?.inference),
        ms(batch?.postprocess),
        ms(batch?.total),
        fixed(server.batches, 0),
        sizesText(server.batchSizes),
      ];
    }),
  };
}

const RESULTS_NOTE = "Throughput counts successes per second; latencies are the client's, over successful requests.";

function serverNotes(report: BenchReport): string[] {
  const missing = report.levels.filter((level) => level.server === null).map((level) => level.concurrency);
  const notes = [
    'Queue is the mean wait of a request before its batch was sent; the phases are means per batch as the handler timed them, ' +
      'and total runs from the batch being sent to its results arriving back.',
  ];
  if (report.target.metricsUrl !== undefined) notes.push(`Read from ${report.target.metricsUrl}.`);
  if (missing.length > 0)
    notes.push(
      `The server's figures could not be read at concurrency ${missing.join(', ')}; ${missing.length === 1 ? 'that row shows' : 'those rows show'} ${DASH}.`,
    );
  return notes;
}

// report.md

/** Enough to keep a table row one row and raw HTML out of the rendered page. */
function escapeMarkdown(text: string): string {
  return text
    .replace(/[\r\n]+/g, ' ')
    .replace(/\|/g, '\\|')
    .replace(/</g, '&lt;');
}

function markdownTable({ columns, rows }: Table): string {
  const line = (cells: string[]) => `| ${cells.map(escapeMarkdown).join(' | ')} |`;
  const rule = `| ${columns.map(([, align]) => (align === 'right' ? '---:' : ':---')).join(' | ')} |`;
  return [line(columns.map(([title]) => title)), rule, ...rows.map(line)].join('\n');
}

export function renderMarkdown(report: BenchReport): string {
  const parts = [
    `# kiln bench: ${escapeMarkdown(report.target.model)}`,
    runFacts(report)
      .map(([label, value]) => `**${label}:** ${escapeMarkdown(value)}.`)
      .join('\n'),
    '## Results',
    markdownTable(resultsTable(report.levels)),
    RESULTS_NOTE,
    '## Server side',
    markdownTable(serverTable(report.levels)),
    serverNotes(report).map(escapeMarkdown).join(' '),
  ];
  if (report.warnings.length > 0) parts.push('## Warnings', report.warnings.map((warning) => `- ${escapeMarkdown(warning)}`).join('\n'));
  return `${parts.join('\n\n')}\n`;
}

// The terminal summary

export function renderText(report: BenchReport): string {
  const header = ['c', 'requests', 'errors', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'mean batch'];
  const rows = report.levels.map((level) => [
    fixed(level.concurrency, 0),
    fixed(level.requests, 0),
    fixed(errorCount(level), 0),
    fixed(level.throughput, 1),
    ms(level.latencyMs?.p50),
    ms(level.latencyMs?.p90),
    ms(level.latencyMs?.p99),
    ms(level.latencyMs?.max),
    fixed(meanBatch(level), 2),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padStart(widths[i] ?? 0)).join('  ');
  const lines = [header, ...rows].map(line);
  return [...lines, ...report.warnings.map((warning) => `warning: ${warning}`)].map((output) => `${output}\n`).join('');
}

function figure(chart: string, caption: string, body: string): string {
  return `<figure data-chart="${chart}">\n${body}\n<figcaption>${escapeHtml(caption)}</figcaption>\n</figure>`;
}

function htmlTable({ columns, rows }: Table): string {
  const cls = (align: Align | undefined) => (align === 'right' ? ' class="num"' : '');
  const head = columns.map(([title, align]) => `<th scope="col"${cls(align)}>${escapeHtml(title)}</th>`).join('');
  const body = rows.map((row) => `<tr>${row.map((cell, i) => `<td${cls(columns[i]?.[1])}>${escapeHtml(cell)}</td>`).join('')}</tr>`);
  return ['<div class="table-wrap"><table>', `<thead><tr>${head}</tr></thead>`, '<tbody>', ...body, '</tbody>', '</table></div>'].join(
    '\n',
  );
}

const CSS = `
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --rule: #dde1e8; }
body { margin: 0; background: #f6f7f9; color: var(--ink); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 960px; margin: 0 auto; padding: 32px 24px 64px; }
h1 { font-size: 1.6rem; margin: 0 0 16px; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 40px 0 12px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; background: #fff; font-variant-numeric: tabular-nums; font-size: 14px; }
th, td { padding: 6px 8px; border-bottom: 1px solid var(--rule); text-align: left; }
th { font-weight: 600; background: #eef0f4; vertical-align: bottom; }
.num { text-align: right; }
td.num { white-space: nowrap; }
.note, figcaption { color: var(--muted); font-size: 13px; }
.warnings { background: #fff7e6; border-left: 4px solid #E69F00; padding: 8px 16px; margin-top: 24px; }
.warnings h2 { margin: 8px 0; }
figure { margin: 20px 0; padding: 16px; background: #fff; border: 1px solid var(--rule); border-radius: 6px; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { margin-top: 8px; }
svg text { font-size: 11px; fill: var(--ink); }
svg .axis-title, svg .legend-title { fill: var(--muted); font-size: 12px; }
svg .on-dark { fill: #fff; }
svg .empty { fill: var(--muted); font-style: italic; }
svg .grid { stroke: #e6e9ee; }
svg .axis { stroke: #9aa1ad; }
svg circle { stroke: #fff; stroke-width: 1.5; }
svg rect { stroke: #fff; stroke-width: 1; }
p.empty { color: var(--muted); font-style: italic; }
`;

export function renderHtml(report: BenchReport): string {
  const { levels } = report;
  const title = `kiln bench: ${report.target.model}`;
  const facts = runFacts(report).map(([label, value]) => `<dt>${escapeHtml(label)}</dt><dd>${escapeHtml(value)}</dd>`);
  const failed = levels.filter((level) => level.latencyMs === null).map((level) => level.concurrency);
  const unread = levels.filter((level) => level.server === null).map((level) => level.concurrency);
  const warnings =
    report.warnings.length === 0
      ? []
      : [
          '<section class="warnings">',
          '<h2>Warnings</h2>',
          '<ul>',
          ...report.warnings.map((w) => `<li>${escapeHtml(w)}</li>`),
          '</ul>',
          '</section>',
        ];
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    '<main>',
    `<h1>${escapeHtml(title)}</h1>`,
    '<dl>',
    ...facts,
    '</dl>',
    ...warnings,
    '<h2>Results</h2>',
    htmlTable(resultsTable(levels)),
    `<p class="note">${escapeHtml(RESULTS_NOTE)}</p>`,
    figure('throughput', 'Throughput: successful requests per second at each concurrency level.', throughputChart(levels)),
    figure(
      'latency',
      `Client-side latency of successful requests, in milliseconds.${failed.length > 0 ? ` No request succeeded at concurrency ${failed.join(', ')}.` : ''}`,
      latencyChart(levels),
    ),
    '<h2>Server side</h2>',
    htmlTable(serverTable(levels)),
    `<p class="note">${escapeHtml(serverNotes(report).join(' '))}</p>`,
    figure(
      'batch-sizes',
      `Batch sizes: the share of batches of each size at each concurrency level, as the server counted them.${
        unread.length > 0 ? ` Not available at concurrency ${unread.join(', ')}.` : ''
      }`,
      batchSizeChart(levels),
    ),
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
