// maxBatchDelay: auto against fixed delays, measured with `kiln bench` on the two models of
// bench/compare (PP-OCR's direction classifier, ~1 ms; the MobileNetV2-shaped net, ~5 ms).
//
//   npm run bench:batching     → bench/results/batching.md and batching.json (about 15 minutes)
//
// Each setup is archived with its own model-config.yaml (tensor handler, default workers and
// threads) and benched by `kiln bench <archive> -c 1,32`, which serves it on free ports: one run
// per setup, for the table. The two setups each target compares (c=1: `batchSize: 1` and `auto`;
// c=32: the best fixed delay and `auto`) are then served side by side and benched in ROUNDS short
// windows each, alternating, and compared by their medians: from one server start to the next, or
// one minute to the next, a p50 or a throughput moves by several per cent on this machine.
//
// Environment: KILN_BENCH_DURATION (s per level, default 8), KILN_BENCH_WARMUP (default 2),
// KILN_BENCH_ROUNDS (windows per setup in a
// paired comparison, default 8), KILN_BENCH_PAIR_DURATION (s per window, default 4), KILN_BENCH_MODELS (default cls,mnv2), KILN_BENCH_DELAYS (default 1,2,5,10,20).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { archiveWithConfig } from '../compare/archive.mjs';
import { clsModel, writeConvNet } from '../compare/models.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const kiln = join(root, 'packages/cli/bin/kiln.js');
const env = process.env;
const durationS = Number(env.KILN_BENCH_DURATION ?? 8);
const warmupS = Number(env.KILN_BENCH_WARMUP ?? 2);
const rounds = Number(env.KILN_BENCH_ROUNDS ?? 8);
const pairS = Number(env.KILN_BENCH_PAIR_DURATION ?? 4);
const delays = (env.KILN_BENCH_DELAYS ?? '1,2,5,10,20').split(',').map(Number);
const work = join(root, 'bench/out/batching');
mkdirSync(work, { recursive: true });

const makers = { cls: () => clsModel(), mnv2: () => writeConvNet(work) };
const models = (env.KILN_BENCH_MODELS ?? 'cls,mnv2').split(',').map((key) => makers[key]());

/** One archive per setup, in its own folder (where its reports go too). */
function archive(model, label, config) {
  return archiveWithConfig(root, model, config, join(work, `${model.key}-${label}`));
}

/**
 * One `kiln bench` run; returns its report.json. `target`: an archive path, or a server from serve().
 * @param {string | { url: string, metrics: string }} target
 */
function bench(model, target, concurrency, reportDir, seconds = { durationS, warmupS }) {
  execFileSync(
    process.execPath,
    [
      kiln,
      'bench',
      ...(typeof target === 'string' ? [target] : [target.url, '--model', model.key, '--metrics-url', target.metrics]),
      // The classifier's height and width are open in its graph; the net's are fixed.
      ...(model.key === 'cls' ? ['--shape', `x=1,${model.dims.join(',')}`] : []),
      '-c',
      concurrency,
      '-d',
      String(seconds.durationS),
      '--warmup',
      String(seconds.warmupS),
      '--report',
      reportDir,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return JSON.parse(readFileSync(join(reportDir, 'report.json'), 'utf8'));
}

/** `kiln serve` for one archive on free ports; resolves once it is ready. */
async function serve(mar) {
  const args = ['serve', '--models', mar];
  for (const api of ['inference', 'management', 'metrics']) args.push(`--${api}-address`, 'http://127.0.0.1:0');
  const child = spawn(process.execPath, [kiln, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  const deadline = Date.now() + 60_000;
  while (!/Kiln is ready/.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`kiln serve ${mar} did not get ready:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const address = (api) => new RegExp(`${api} API listening on (http:\\/\\/[^\\s"]+)`).exec(output)[1];
  return {
    url: address('inference'),
    metrics: `${address('metrics')}/metrics`,
    stop: () => new Promise((resolve) => child.on('exit', resolve).kill('SIGTERM')),
  };
}

/**
 * A setting against another, paired: both servers run side by side (the idle one costs nothing),
 * and short windows alternate between them, so that drift over time and one server start's luck
 * fall on both alike. Returns each one's figures, window by window.
 */
async function paired(model, [a, b], concurrency, read) {
  const servers = [await serve(a.mar), await serve(b.mar)];
  const runs = [[], []];
  for (let round = 0; round < rounds; round++) {
    for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) {
      const report = bench(model, servers[i], concurrency, join(work, `pair-${model.key}`), { durationS: pairS, warmupS: 1 });
      runs[i].push(read(report.levels[0]));
    }
  }
  await Promise.all(servers.map((s) => s.stop()));
  return runs;
}

const setups = [
  { label: 'batchSize 1', key: 'bs1', config: 'batchSize: 1\n' },
  ...delays.map((d) => ({ label: `fixed ${d} ms`, key: `fixed${d}`, config: `batchSize: 8\nmaxBatchDelay: ${d}\n` })),
  { label: 'auto', key: 'auto', config: 'batchSize: 8\nmaxBatchDelay: auto\n' },
];

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const results = [];
for (const model of models) {
  const rows = {};
  for (const setup of setups) {
    const mar = archive(model, setup.key, setup.config);
    process.stderr.write(`${model.key} ${setup.label}\n`);
    const report = bench(model, mar, '1,32', join(work, `${model.key}-${setup.key}`, 'report'));
    const [c1, c32] = report.levels;
    rows[setup.key] = { label: setup.label, mar, p50: [c1.latencyMs.p50], rps: [c32.throughput], c1, c32 };
  }
  // Each target compares two setups, paired: more windows of those two, alternating, and their medians.
  // The best fixed delay is the one with the highest c=32 throughput in the first round.
  const bestKey = delays.map((d) => `fixed${d}`).reduce((best, key) => (rows[key].c32.throughput > rows[best].c32.throughput ? key : best));
  process.stderr.write(`${model.key}: c=1, batchSize 1 against auto, paired\n`);
  [rows.bs1.p50, rows.auto.p50] = await paired(model, [rows.bs1, rows.auto], '1', (level) => level.latencyMs.p50);
  process.stderr.write(`${model.key}: c=32, ${rows[bestKey].label} against auto, paired\n`);
  [rows[bestKey].rps, rows.auto.rps] = await paired(model, [rows[bestKey], rows.auto], '32', (level) => level.throughput);
  const c1Ratio = median(rows.auto.p50) / median(rows.bs1.p50);
  const c32Ratio = median(rows.auto.rps) / median(rows[bestKey].rps);
  results.push({
    model: model.key,
    title: model.title,
    rows: Object.values(rows).map(({ label, p50, rps, c1, c32 }) => ({
      label,
      c1: { p50: median(p50), p50Runs: p50, p99: c1.latencyMs.p99, queueMs: c1.server?.queueMs },
      c32: {
        throughput: median(rps),
        throughputRuns: rps,
        p50: c32.latencyMs.p50,
        p99: c32.latencyMs.p99,
        meanBatch: c32.server?.meanBatchSize,
      },
    })),
    targets: {
      c1: { ratio: c1Ratio, held: c1Ratio <= 1.05 },
      c32: { best: rows[bestKey].label, ratio: c32Ratio, held: c32Ratio >= 0.95 },
    },
  });
}

const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
const lines = [
  '# maxBatchDelay: auto against fixed delays',
  '',
  `Measured with \`kiln bench\` (\`npm run bench:batching\`) at ${commit}, ${new Date().toISOString().slice(0, 16)} UTC, on ${cpus().length} × ${cpus()[0]?.model.trim()}.`,
  `Each setup: \`batchSize: 8\` (1 for the first row), tensor handler, v2 binary requests, default workers and threads; ${durationS} s per level after a ${warmupS} s warm-up.`,
  `Each target compares two setups, paired: both served side by side, benched in ${rounds} windows of ${pairS} s each (after 1 s of warm-up), alternating.`,
  'The table gives their median with every window in brackets (c=1 p50: `batchSize: 1` and `auto`; c=32 throughput: the best fixed',
  'delay of the first run, and `auto`). Every other cell is the one run of that setup.',
  '',
];
const f = (n, d = 2) => (n === undefined || n === null ? '—' : n.toFixed(d));
const runs = (values, d) => (values.length > 1 ? ` (${values.map((v) => v.toFixed(d)).join(', ')})` : '');
for (const r of results) {
  lines.push(
    `## ${r.title}`,
    '',
    '| setup | c=1 p50 (ms) | c=1 p99 (ms) | c=1 queue (ms) | c=32 req/s | c=32 p50 (ms) | c=32 p99 (ms) | c=32 mean batch |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const { label, c1, c32 } of r.rows) {
    lines.push(
      `| ${label} | ${f(c1.p50)}${runs(c1.p50Runs, 2)} | ${f(c1.p99)} | ${f(c1.queueMs)} | ${f(c32.throughput, 1)}${runs(c32.throughputRuns, 0)} | ${f(c32.p50)} | ${f(c32.p99)} | ${f(c32.meanBatch)} |`,
    );
  }
  lines.push(
    '',
    `- c=1: auto's p50 is **${r.targets.c1.ratio.toFixed(3)}×** that of \`batchSize: 1\` (target ≤ 1.05×): ${r.targets.c1.held ? 'held' : '**NOT held**'}.`,
    `- c=32: auto's throughput is **${r.targets.c32.ratio.toFixed(3)}×** that of the best fixed delay (${r.targets.c32.best}; target ≥ 0.95×): ${r.targets.c32.held ? 'held' : '**NOT held**'}.`,
    '',
  );
}
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/batching.md'), `${lines.join('\n')}\n`);
writeFileSync(join(root, 'bench/results/batching.json'), `${JSON.stringify({ commit, durationS, warmupS, rounds, results }, null, 2)}\n`);
process.stdout.write(`${lines.join('\n')}\n`);
