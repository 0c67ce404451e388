// maxBatchDelay: auto against fixed delays, measured with `kiln bench` on the two models of
// bench/compare (PP-OCR's direction classifier, ~1 ms; the MobileNetV2-shaped net, ~5 ms).
//
//   npm run build && node bench/batching/run.mjs     → bench/results/batching.md and batching.json
//
// Each setup is archived with its own model-config.yaml (tensor handler, default workers and
// threads) and benched by `kiln bench <archive> -c 1,32`, which serves it on free ports. The c=1
// figures of `batchSize: 1` and `auto` are taken over ROUNDS alternating runs (median of their
// p50s), because one server start to the next moves a c=1 p50 by a few per cent on this machine.
//
// Environment: KILN_BENCH_DURATION (s per level, default 8), KILN_BENCH_WARMUP (default 2),
// KILN_BENCH_ROUNDS (default 3), KILN_BENCH_MODELS (default cls,mnv2), KILN_BENCH_DELAYS (default 1,2,5,10,20).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clsModel, writeConvNet } from '../compare/models.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const kiln = join(root, 'packages/cli/bin/kiln.js');
const env = process.env;
const durationS = Number(env.KILN_BENCH_DURATION ?? 8);
const warmupS = Number(env.KILN_BENCH_WARMUP ?? 2);
const rounds = Number(env.KILN_BENCH_ROUNDS ?? 3);
const delays = (env.KILN_BENCH_DELAYS ?? '1,2,5,10,20').split(',').map(Number);
const work = join(root, 'bench/out/batching');
mkdirSync(work, { recursive: true });

const makers = { cls: () => clsModel(), mnv2: () => writeConvNet(work) };
const models = (env.KILN_BENCH_MODELS ?? 'cls,mnv2').split(',').map((key) => makers[key]());

/** @param {string} label @param {string} config @param {{ key: string, path: string, dims: number[] }} model */
function archive(model, label, config) {
  const dir = join(work, `${model.key}-${label}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model-config.yaml'), config);
  execFileSync(process.execPath, [
    kiln,
    'archive',
    '--model-name',
    model.key,
    '-v',
    '1',
    '--serialized-file',
    model.path,
    '--handler',
    'tensor',
    '-c',
    join(dir, 'model-config.yaml'),
    '--export-path',
    dir,
    '-f',
    '-q',
  ]);
  return join(dir, `${model.key}.mar`);
}

/** One `kiln bench` run; returns its report.json. */
function bench(model, mar, concurrency, reportDir) {
  execFileSync(
    process.execPath,
    [
      kiln,
      'bench',
      mar,
      // The classifier's height and width are open in its graph; the net's are fixed.
      ...(model.key === 'cls' ? ['--shape', `x=1,${model.dims.join(',')}`] : []),
      '-c',
      concurrency,
      '-d',
      String(durationS),
      '--warmup',
      String(warmupS),
      '--report',
      reportDir,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return JSON.parse(readFileSync(join(reportDir, 'report.json'), 'utf8'));
}

const setups = [
  { label: 'batchSize 1', key: 'bs1', config: 'batchSize: 1\n' },
  ...delays.map((d) => ({ label: `fixed ${d} ms`, key: `fixed${d}`, config: `batchSize: 8\nmaxBatchDelay: ${d}\n` })),
  { label: 'auto', key: 'auto', config: 'batchSize: 8\nmaxBatchDelay: auto\n' },
];

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const results = [];
for (const model of models) {
  const rows = {};
  for (const setup of setups) {
    const mar = archive(model, setup.key, setup.config);
    process.stderr.write(`${model.key} ${setup.label}\n`);
    const report = bench(model, mar, '1,32', join(work, `${model.key}-${setup.key}`, 'report'));
    const [c1, c32] = report.levels;
    rows[setup.key] = { label: setup.label, mar, p50: [c1.latencyMs.p50], c1, c32 };
  }
  // More c=1 rounds for the two setups the c=1 target compares, alternating.
  for (let round = 1; round < rounds; round++) {
    for (const key of ['bs1', 'auto']) {
      const report = bench(model, rows[key].mar, '1', join(work, `${model.key}-${key}`, `report-${round}`));
      rows[key].p50.push(report.levels[0].latencyMs.p50);
    }
  }
  const fixed = delays.map((d) => rows[`fixed${d}`]);
  const bestFixed = fixed.reduce((best, row) => (row.c32.throughput > best.c32.throughput ? row : best));
  const autoP50 = median(rows.auto.p50);
  const bs1P50 = median(rows.bs1.p50);
  results.push({
    model: model.key,
    title: model.title,
    rows: Object.values(rows).map(({ label, p50, c1, c32 }) => ({
      label,
      c1: { p50: median(p50), p50Runs: p50, p99: c1.latencyMs.p99, meanBatch: c1.server?.meanBatchSize },
      c32: { throughput: c32.throughput, p50: c32.latencyMs.p50, p99: c32.latencyMs.p99, meanBatch: c32.server?.meanBatchSize },
    })),
    targets: {
      c1: { ratio: autoP50 / bs1P50, held: autoP50 / bs1P50 <= 1.05 },
      c32: {
        best: bestFixed.label,
        ratio: rows.auto.c32.throughput / bestFixed.c32.throughput,
        held: rows.auto.c32.throughput / bestFixed.c32.throughput >= 0.95,
      },
    },
  });
}

const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
const lines = [
  '# maxBatchDelay: auto against fixed delays',
  '',
  `Measured with \`kiln bench\` (\`node bench/batching/run.mjs\`) at ${commit}, ${new Date().toISOString().slice(0, 16)} UTC, on ${cpus().length} × ${cpus()[0]?.model.trim()}.`,
  `Each setup: tensor handler, v2 binary requests, default workers and threads; ${durationS} s per level after a ${warmupS} s warm-up.`,
  `The c=1 p50 of \`batchSize: 1\` and \`auto\` is the median of ${rounds} alternating runs.`,
  '',
];
for (const r of results) {
  lines.push(
    `## ${r.title}`,
    '',
    '| setup | c=1 p50 (ms) | c=1 p99 (ms) | c=1 mean batch | c=32 req/s | c=32 p50 (ms) | c=32 p99 (ms) | c=32 mean batch |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const row of r.rows) {
    const f = (n, d = 2) => (n === undefined ? '—' : n.toFixed(d));
    lines.push(
      `| ${row.label} | ${f(row.c1.p50)}${row.c1.p50Runs.length > 1 ? ` (${row.c1.p50Runs.map((p) => p.toFixed(2)).join(', ')})` : ''} | ${f(row.c1.p99)} | ${f(row.c1.meanBatch)} | ${f(row.c32.throughput, 1)} | ${f(row.c32.p50)} | ${f(row.c32.p99)} | ${f(row.c32.meanBatch)} |`,
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
