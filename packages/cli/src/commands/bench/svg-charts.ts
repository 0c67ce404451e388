/*
 * The report's three charts as inline SVG: nothing fetched, no script. Each point and bar segment has a
 * <title> with its value, so hovering shows it.
 */
import { bySize, fixed, ms, sizeEntries, sizesText } from './format.js';
import type { LevelResult, ServerBreakdown } from './report-types.js';

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Okabe–Ito: distinguishable with the common forms of colour blindness. */
const BLUE = '#0072B2';
const GREEN = '#009E73';
const VERMILLION = '#D55E00';
const PURPLE = '#CC79A7';

const WIDTH = 640;
const HEIGHT = 280;

/** Maps [d0, d1] onto [r0, r1]; an empty domain maps everything to the middle of the range. */
function linearScale([d0, d1]: [number, number], [r0, r1]: [number, number]): (value: number) => number {
  const span = d1 - d0;
  if (span === 0 || !Number.isFinite(span)) return () => (r0 + r1) / 2;
  return (value) => r0 + ((value - d0) / span) * (r1 - r0);
}

/** Ticks from 0 to at least `max`, about `count` intervals (3 to 7) spaced 1, 2 or 5 × 10^k apart. */
function niceTicks(max: number, count = 5): number[] {
  const top = Number.isFinite(max) && max > 0 ? max : 1;
  const raw = top / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  // The multiple nearest to the raw step on a log scale (as d3's ticks choose it), not the next one up.
  const ratio = raw / power;
  const step = power * (ratio >= Math.sqrt(50) ? 10 : ratio >= Math.sqrt(10) ? 5 : ratio >= Math.sqrt(2) ? 2 : 1);
  const intervals = Math.ceil(top / step - 1e-9);
  return Array.from({ length: intervals + 1 }, (_, i) => Number((i * step).toPrecision(12)));
}

function tickLabel(value: number, step: number): string {
  if (step >= 1000) return `${value / 1000}k`;
  return value.toFixed(step >= 1 ? 0 : Math.ceil(-Math.log10(step) - 1e-9));
}

/** Coordinates to 0.1 of a unit keep the SVG short. */
function n(value: number): string {
  return String(Math.round(value * 10) / 10);
}

/** An SVG path through the points, lifting the pen wherever a point is missing. */
function linePath(points: ([x: number, y: number] | null)[]): string {
  let d = '';
  let down = false;
  for (const point of points) {
    if (point !== null) d += `${down ? 'L' : 'M'}${n(point[0])} ${n(point[1])}`;
    down = point !== null;
  }
  return d;
}

function svgOpen(height: number, label: string): string {
  return `<svg viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${escapeHtml(label)}">`;
}

function text(x: number, y: number, content: string, attributes = ''): string {
  return `<text x="${n(x)}" y="${n(y)}"${attributes ? ` ${attributes}` : ''}>${escapeHtml(content)}</text>`;
}

interface Series {
  key: string;
  colour: string;
  dash: string | null;
  values: (number | null)[];
  /** The exact value, as a point's tooltip shows it. */
  describe: (category: number, value: number) => string;
}

/** Lines over categories evenly spaced along x (the concurrency levels), y from 0, one point per value. */
function lineChart(categories: number[], series: Series[], xTitle: string, yTitle: string, label: string): string {
  const legend = series.length > 1;
  const top = legend ? 40 : 16;
  const [left, right, bottom] = [64, 16, 52];
  const base = HEIGHT - bottom;
  const values = series.flatMap((s) => s.values).filter((v): v is number => v !== null && Number.isFinite(v));
  const ticks = niceTicks(Math.max(0, ...values));
  const y = linearScale([0, ticks.at(-1) ?? 1], [base, top]);
  const band = (WIDTH - left - right) / Math.max(1, categories.length);
  const x = (i: number) => left + band * (i + 0.5);
  const step = (ticks[1] ?? 1) - (ticks[0] ?? 0);
  const parts = [svgOpen(HEIGHT, label), '<g class="y-axis">'];
  for (const tick of ticks) {
    parts.push(`<line class="grid" x1="${left}" x2="${WIDTH - right}" y1="${n(y(tick))}" y2="${n(y(tick))}"/>`);
    parts.push(text(left - 8, y(tick), tickLabel(tick, step), 'dy="0.32em" text-anchor="end"'));
  }
  parts.push('</g>', `<line class="axis" x1="${left}" x2="${WIDTH - right}" y1="${base}" y2="${base}"/>`, '<g class="x-axis">');
  categories.forEach((category, i) => parts.push(text(x(i), base + 18, String(category), 'text-anchor="middle"')));
  parts.push('</g>');
  parts.push(text(left + (WIDTH - left - right) / 2, HEIGHT - 10, xTitle, 'class="axis-title" text-anchor="middle"'));
  parts.push(
    `<text class="axis-title" transform="translate(16 ${n((top + base) / 2)}) rotate(-90)" text-anchor="middle">${escapeHtml(yTitle)}</text>`,
  );
  if (values.length === 0)
    parts.push(text(left + (WIDTH - left - right) / 2, (top + base) / 2, 'no data', 'class="empty" text-anchor="middle"'));
  let legendX = left;
  for (const s of series) {
    const dash = s.dash === null ? '' : ` stroke-dasharray="${s.dash}"`;
    const points = s.values.map((v, i): [number, number] | null => (v === null || !Number.isFinite(v) ? null : [x(i), y(v)]));
    parts.push(`<g class="series" data-series="${escapeHtml(s.key)}">`);
    parts.push(`<path d="${linePath(points)}" fill="none" stroke="${s.colour}" stroke-width="2"${dash}/>`);
    s.values.forEach((v, i) => {
      const point = points[i];
      if (v === null || !point) return;
      const title = escapeHtml(s.describe(categories[i] ?? 0, v));
      parts.push(`<circle cx="${n(point[0])}" cy="${n(point[1])}" r="4" fill="${s.colour}"><title>${title}</title></circle>`);
    });
    parts.push('</g>');
    if (legend) {
      parts.push(`<line x1="${legendX}" x2="${legendX + 24}" y1="14" y2="14" stroke="${s.colour}" stroke-width="2"${dash}/>`);
      parts.push(`<circle cx="${legendX + 12}" cy="14" r="4" fill="${s.colour}"/>`, text(legendX + 30, 14, s.key, 'dy="0.32em"'));
      legendX += 30 + s.key.length * 7 + 24;
    }
  }
  parts.push('</svg>');
  return parts.join('\n');
}

export function throughputChart(levels: LevelResult[]): string {
  const series: Series = {
    key: 'throughput',
    colour: BLUE,
    dash: null,
    values: levels.map((level) => level.throughput),
    describe: (c, v) => `concurrency ${c}: ${fixed(v, 1)} req/s`,
  };
  const label = `Throughput against concurrency: ${levels.map((l) => `${l.concurrency}: ${fixed(l.throughput, 1)} req/s`).join('; ')}`;
  return lineChart(
    levels.map((level) => level.concurrency),
    [series],
    'concurrency (clients)',
    'throughput (req/s)',
    label,
  );
}

export function latencyChart(levels: LevelResult[]): string {
  const percentiles = [
    ['p50', BLUE, null],
    ['p90', GREEN, '7 3'],
    ['p99', VERMILLION, '2 3'],
    ['max', PURPLE, '9 3 2 3'],
  ] as const;
  const series = percentiles.map(([key, colour, dash]): Series => ({
    key,
    colour,
    dash,
    values: levels.map((level) => level.latencyMs?.[key] ?? null),
    describe: (c, v) => `concurrency ${c}, ${key}: ${ms(v)} ms`,
  }));
  const label = `Latency percentiles against concurrency: ${levels
    .map(({ concurrency: c, latencyMs: l }) =>
      l ? `${c}: p50 ${ms(l.p50)}, p90 ${ms(l.p90)}, p99 ${ms(l.p99)}, max ${ms(l.max)} ms` : `${c}: none`,
    )
    .join('; ')}`;
  return lineChart(
    levels.map((level) => level.concurrency),
    series,
    'concurrency (clients)',
    'latency (ms)',
    label,
  );
}

/** Viridis, for batch sizes: ordered, so light (small) to dark (large), and readable in grey. */
const VIRIDIS: [r: number, g: number, b: number][] = [
  [253, 231, 37],
  [94, 201, 98],
  [33, 145, 140],
  [59, 82, 139],
  [68, 1, 84],
];

function sequentialColour(t: number): { fill: string; dark: boolean } {
  const scaled = (0.08 + 0.84 * Math.min(Math.max(t, 0), 1)) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(scaled), VIRIDIS.length - 2);
  const [a = [0, 0, 0], b = a] = [VIRIDIS[i], VIRIDIS[i + 1]];
  const rgb = a.map((channel, k) => Math.round(channel + ((b[k] ?? channel) - channel) * (scaled - i)));
  const [r = 0, g = 0, bl = 0] = rgb;
  const fill = `#${rgb.map((channel) => channel.toString(16).padStart(2, '0')).join('')}`;
  return { fill, dark: (0.299 * r + 0.587 * g + 0.114 * bl) / 255 < 0.55 };
}

type Measured = LevelResult & { server: ServerBreakdown };

/** A 100% bar per level with server figures: the share of its batches of each size. */
export function batchSizeChart(levels: LevelResult[]): string {
  const measured = levels.filter((level): level is Measured => level.server !== null);
  if (measured.length === 0) return '<p class="empty">The server-side figures were not available, so there are no batch sizes to show.</p>';
  const sizes = [...new Set(measured.flatMap((level) => sizeEntries(level.server.batchSizes).map(([size]) => size)))].sort(bySize);
  const colours = new Map(sizes.map((size, i) => [size, sequentialColour(sizes.length === 1 ? 0.5 : i / (sizes.length - 1))]));
  const [left, right] = [64, 16];
  const parts: string[] = [];

  // The legend wraps onto as many rows as the sizes need.
  const legendLeft = 80;
  parts.push(text(0, 14, 'batch size', 'dy="0.32em" class="legend-title"'));
  let [legendX, legendY] = [legendLeft, 8];
  for (const [size, colour] of colours) {
    const width = 12 + 6 + size.length * 7 + 14;
    if (legendX + width > WIDTH - right && legendX > legendLeft) [legendX, legendY] = [legendLeft, legendY + 20];
    parts.push(`<rect x="${legendX}" y="${legendY}" width="12" height="12" fill="${colour.fill}"/>`);
    parts.push(text(legendX + 18, legendY + 6, size, 'dy="0.32em"'));
    legendX += width;
  }

  const barsTop = legendY + 32;
  const axisY = barsTop + measured.length * 30;
  const height = axisY + 44;
  const x = linearScale([0, 1], [left, WIDTH - right]);
  parts.push('<g class="x-axis">');
  for (const share of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line class="grid" x1="${n(x(share))}" x2="${n(x(share))}" y1="${barsTop - 6}" y2="${axisY}"/>`);
    parts.push(text(x(share), axisY + 16, `${share * 100}%`, 'text-anchor="middle"'));
  }
  parts.push('</g>', text(left + (WIDTH - left - right) / 2, height - 8, 'share of batches', 'class="axis-title" text-anchor="middle"'));

  measured.forEach(({ concurrency, server }, row) => {
    const y = barsTop + row * 30;
    parts.push(text(left - 8, y + 10, `c = ${concurrency}`, 'dy="0.32em" text-anchor="end"'));
    const entries = sizeEntries(server.batchSizes);
    const total = entries.reduce((sum, [, count]) => sum + count, 0);
    if (total === 0) {
      parts.push(text(left + 6, y + 10, 'no batches', 'dy="0.32em" class="empty"'));
      return;
    }
    let start = 0;
    for (const [size, count] of entries) {
      const [x0, x1] = [x(start / total), x((start + count) / total)];
      const colour = colours.get(size) ?? sequentialColour(0.5);
      const title = `concurrency ${concurrency}, batch size ${size}: ${count} of ${total} batches (${fixed((count / total) * 100, 1)}%)`;
      parts.push(
        `<rect x="${n(x0)}" y="${y}" width="${n(x1 - x0)}" height="20" fill="${colour.fill}"><title>${escapeHtml(title)}</title></rect>`,
      );
      if (x1 - x0 >= 10 + size.length * 7)
        parts.push(text((x0 + x1) / 2, y + 10, size, `dy="0.32em" text-anchor="middle"${colour.dark ? ' class="on-dark"' : ''}`));
      start += count;
    }
  });

  const label = `Share of batches of each size, per concurrency level: ${measured
    .map(({ concurrency, server }) => `${concurrency}: ${sizesText(server.batchSizes)}`)
    .join('; ')}`;
  return [svgOpen(height, label), ...parts, '</svg>'].join('\n');
}
