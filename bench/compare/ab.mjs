// Two builds of Kiln, A and B, measured against each other in alternating windows: the answer to
// "did this change make the hot path slower?", free of the machine's drift between two full runs
// of run.mjs. Both servers run at once, each idle while the other is loaded.
//
//   node bench/compare/build-ref.mjs <rev>             # builds A in $TMPDIR/kiln-ref-<sha>
//   node bench/compare/ab.mjs $TMPDIR/kiln-ref-<sha>   # B is this checkout (npm run build first)
//
// Environment (defaults in brackets):
//   KILN_AB_MODELS [mnv2]  KILN_AB_ISOLATIONS [thread,process]  KILN_AB_WINDOWS [6]
//   KILN_AB_SETUPS [1:0:2x1,8:2:1x2]  batchSize:maxBatchDelay:procs×threads
//   KILN_AB_A_ENV, KILN_AB_B_ENV  JSON objects of environment variables for A's or B's server
//                          (e.g. '{"KILN_ACCESS_LOG":"/tmp/access.log"}' to measure one setting;
//                          A and B may then be the same build)
//   KILN_AB_REPORT         also writes the markdown table to this file
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadServer, prepare, startServer, stopServer } from './contestants.mjs';
import { clsModel, writeConvNet } from './models.mjs';
import { median } from './report.mjs';

const env = process.env;
const rootA = process.argv[2] && resolve(process.argv[2]);
if (!rootA) throw new Error('usage: node bench/compare/ab.mjs <root of build A> [root of build B = this checkout]');
const rootB = resolve(process.argv[3] ?? fileURLToPath(new URL('../..', import.meta.url)));
const windows = Number(env.KILN_AB_WINDOWS ?? 6);
const setups = (env.KILN_AB_SETUPS ?? '1:0:2x1,8:2:1x2').split(',').map((s) => {
  const [batchSize, maxBatchDelay, split] = s.split(':');
  const [procs, threads] = split.split('x').map(Number);
  return { batchSize: Number(batchSize), maxBatchDelay: Number(maxBatchDelay), procs, threads };
});

const dir = mkdtempSync(join(tmpdir(), 'kiln-ab-'));
const rows = [];
try {
  for (const key of (env.KILN_AB_MODELS ?? 'mnv2').split(',')) {
    const model = await prepare(key === 'cls' ? clsModel() : writeConvNet(dir), dir);
    for (const isolation of (env.KILN_AB_ISOLATIONS ?? 'thread,process').split(',')) {
      for (const setup of setups) {
        const contestant = { id: `kiln-${isolation}`, label: `Kiln ${isolation}`, kind: 'kiln', isolation };
        const a = await startServer(rootA, dir, { ...contestant, env: JSON.parse(env.KILN_AB_A_ENV ?? '{}') }, model, setup);
        const b = await startServer(rootB, dir, { ...contestant, env: JSON.parse(env.KILN_AB_B_ENV ?? '{}') }, model, setup);
        const ratios = { rps: [], p50: [] };
        try {
          for (let w = 0; w < windows; w++) {
            // Which goes first alternates, so neither always follows the other's heat.
            const order = w % 2 === 0 ? [a, b] : [b, a];
            const rps = new Map();
            const p50 = new Map();
            for (const server of order) rps.set(server, (await loadServer(server, { concurrency: 32, warmupS: 0.5, durationS: 2 })).rps);
            for (const server of order) p50.set(server, (await loadServer(server, { concurrency: 1, warmupS: 0.5, durationS: 1 })).p50);
            ratios.rps.push(rps.get(b) / rps.get(a));
            ratios.p50.push(p50.get(b) / p50.get(a));
            process.stderr.write(
              `${key} ${isolation} ${JSON.stringify(setup)} window ${w + 1}: rps B/A ${ratios.rps.at(-1).toFixed(3)}, p50 B/A ${ratios.p50.at(-1).toFixed(3)}\n`,
            );
          }
        } finally {
          await stopServer(a);
          await stopServer(b);
        }
        rows.push({ key, isolation, setup, ratios });
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const range = (xs) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
const table = [
  `A: ${rootA} ${env.KILN_AB_A_ENV ?? ''}`,
  `B: ${rootB} ${env.KILN_AB_B_ENV ?? ''}`,
  '',
  `${windows} alternating windows per row (c=32 for 2 s, then c=1 for 1 s, each after 0.5 s of warm-up). Below 1 means B is slower at throughput or faster at latency.`,
  '',
  '| model | isolation | batchSize, delay | procs × threads | c=32 req/s B/A (median, range) | c=1 p50 B/A (median, range) |',
  '|---|---|---|---|---|---|',
  ...rows.map(
    ({ key, isolation, setup, ratios }) =>
      `| ${key} | ${isolation} | ${setup.batchSize}, ${setup.maxBatchDelay} ms | ${setup.procs}×${setup.threads} | ${median(ratios.rps).toFixed(3)} (${range(ratios.rps)}) | ${median(ratios.p50).toFixed(3)} (${range(ratios.p50)}) |`,
  ),
].join('\n');
console.log(table);
if (env.KILN_AB_REPORT) writeFileSync(env.KILN_AB_REPORT, `# A/B: two builds of Kiln\n\n${table}\n`);
