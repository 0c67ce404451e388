// A bounded soak test of `kiln serve` on 127.0.0.1: good traffic mixed with worker kills, hangs,
// exits, client disconnects, bad requests and scaling, for 120 s by default. It checks that every
// accepted request is answered with a status its kind allows (bench/soak/ledger.mjs says which),
// and that the server's RSS and open file descriptors do not grow by more than 5% from after the
// warm-up to the end. It writes a markdown report (and the same figures as JSON beside it), prints
// it, and exits 1 when a check fails.
//
//   npm run soak                          # 120 s, report in bench/results/soak.md
//   KILN_SOAK_SECONDS=20 npm run soak     # or: node bench/soak/run.mjs --seconds 20
//   KILN_SOAK_REPORT=/tmp/soak.md         # or --report; a run other than 120 s defaults to bench/out/
//   KILN_SOAK_SEED=1234                   # or --seed: the same rows and random choices (which worker to kill, when to leave)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CLIENT_TIMEOUT_MS } from './http.mjs';
import { Ledger, KINDS } from './ledger.mjs';
import { renderReport } from './report.mjs';
import { REPO_ROOT, archiveSoakModel, descendants, killTree, openFds, rssKib, startServer } from './server.mjs';
import { RECOVERY_LIMIT_MS, Traffic } from './traffic.mjs';

const MODEL = 'soak';
/** batchSize 1: a fault reaches its own request only. responseTimeout 2 s: a hang resolves quickly. */
const MODEL_CONFIG = 'isolation: process\nbatchSize: 1\nresponseTimeout: 2\nminWorkers: 1\n';
const CLIENTS = 3;
/** Growth allowed, from after warm-up to the end, for RSS and for open file descriptors. */
const LIMIT_PCT = 5;
/**
 * Before each measurement, full garbage collections GC_GAP_MS apart (at least MIN_GCS, at most
 * MAX_GCS) until V8's young generation is back at its smallest, YOUNG_MIN_KIB. It grows to 32 MiB
 * under load and is the bulk of RSS's noise; V8 shrinks it in a collection only once it has seen
 * little allocated over the last few seconds, which takes the second or third quiet collection.
 */
const MIN_GCS = 3;
const MAX_GCS = 8;
const GC_GAP_MS = 2000;
const YOUNG_MIN_KIB = 1024;
/** After the last collection, AFTER_GC_MS of quiet, then SAMPLES samples this far apart; RSS is their median. */
const AFTER_GC_MS = 1000;
const SAMPLES = 5;
const SAMPLE_GAP_MS = 250;
const STOP_GRACE_MS = 20_000;
const GC_HOOK = join(REPO_ROOT, 'bench/soak/gc-hook.mjs');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** The run's settings, from flags first, then KILN_SOAK_* variables, then defaults. */
function readOptions(argv, env) {
  const { values } = parseArgs({
    args: argv,
    options: { seconds: { type: 'string' }, report: { type: 'string' }, seed: { type: 'string' } },
  });
  const seconds = Number(values.seconds ?? env.KILN_SOAK_SECONDS ?? 120);
  if (!Number.isFinite(seconds) || seconds < 10)
    throw new Error(`--seconds / KILN_SOAK_SECONDS must be a number ≥ 10, received ${seconds}`);
  const seed = Number(values.seed ?? env.KILN_SOAK_SEED ?? Date.now() % 2147483647);
  const defaultReport = seconds === 120 ? 'bench/results/soak.md' : `bench/out/soak-${seconds}s.md`;
  const report = resolve(REPO_ROOT, values.report ?? env.KILN_SOAK_REPORT ?? defaultReport);
  // The first 15% of the run, at least 5 s: RSS still grows a little over the first few thousand
  // requests (V8 compiling the request path, its old generation settling), and a 20 s run's warm-up
  // must get past that.
  const warmupSeconds = Math.max(5, Math.round(seconds * 0.15 * 10) / 10);
  return { seconds, seed, report, warmupSeconds };
}

const log = (line) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/**
 * Stops the traffic's effects and measures: every request settled, the model back at 1 READY
 * worker with nothing queued, the clients' connections closed, full garbage collections until
 * the young generation is small, then SAMPLES samples of the server's RSS and open files.
 */
async function settleAndMeasure({ traffic, ledger, server, gcLog }, when) {
  if (ledger.inFlight !== 0) traffic.problems.push(`${when}: ${ledger.inFlight} requests still in flight after the traffic stopped`);
  await traffic.scale(1);
  const described = await traffic.describe();
  if (described?.jobQueueStatus?.pendingRequests !== 0)
    traffic.problems.push(`${when}: ${described?.jobQueueStatus?.pendingRequests} requests still queued after the traffic stopped`);
  traffic.closeConnections();
  const collections = await collectUntilYoungIsSmall(server, gcLog);
  const samples = [];
  for (let i = 0; i < SAMPLES; i++) {
    if (i > 0) await sleep(SAMPLE_GAP_MS);
    samples.push({ rss: rssKib(server.pid), fds: openFds(server.pid) });
  }
  const rssSamples = samples.map((s) => s.rss);
  const fdCount = median(samples.map((s) => s.fds.count));
  const heap = lastHeapFigures(gcLog);
  const measure = {
    rssKib: median(rssSamples),
    rssSamples,
    fds: samples.find((s) => s.fds.count === fdCount).fds,
    heapUsedKib: heap === undefined ? undefined : Math.round(heap.usedHeap / 1024),
    youngGenerationKib: heap === undefined ? undefined : Math.round(heap.spaces.new_space / 1024),
    collections,
    answered: ledger.totals().answered,
  };
  log(`${when}: RSS ${(measure.rssKib / 1024).toFixed(1)} MiB, ${measure.fds.count} open files, ${measure.answered} requests answered`);
  return measure;
}

/** Runs full collections in the server until its young generation is at its smallest; returns how many it ran. */
async function collectUntilYoungIsSmall(server, gcLog) {
  await sleep(GC_GAP_MS / 2);
  let collections = 0;
  while (collections < MAX_GCS) {
    server.collectGarbage();
    collections++;
    await sleep(GC_GAP_MS / 2);
    const young = lastHeapFigures(gcLog)?.spaces.new_space;
    if (collections >= MIN_GCS && young !== undefined && young <= YOUNG_MIN_KIB * 1024) break;
    await sleep(GC_GAP_MS / 2);
  }
  // V8 hands freed pages back to the system on a thread of its own.
  await sleep(AFTER_GC_MS);
  return collections;
}

/** The V8 heap's figures after the last collection gc-hook.mjs ran, if it wrote any. */
function lastHeapFigures(gcLog) {
  try {
    return JSON.parse(readFileSync(gcLog, 'utf8').trim().split('\n').at(-1));
  } catch {
    return undefined;
  }
}

/** The server's RSS (KiB) once a second, traffic or not, for the report's timeline. */
function sampleEverySecond(pid) {
  const started = performance.now();
  const samples = [];
  const timer = setInterval(() => {
    try {
      samples.push({ s: Math.round((performance.now() - started) / 1000), rssKib: rssKib(pid), fds: openFds(pid).count });
    } catch {
      // The server is gone: the checks say so.
    }
  }, 1000);
  return { samples, stop: () => clearInterval(timer) };
}

/** The server's worker processes now, with their start times, to find any left behind after it exits. */
function workerProcesses(pid) {
  return descendants(pid).map((p) => ({ pid: p, start: startTime(p) }));
}

function startTime(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Stops the server with SIGTERM; kills (and reports) any of its workers still there a second later. */
async function stopServer(server) {
  const workers = workerProcesses(server.pid);
  const exit = await server.stop(STOP_GRACE_MS);
  await sleep(1000);
  const left = workers.filter((w) => w.start !== undefined && startTime(w.pid) === w.start);
  for (const w of left) killTree(w.pid);
  const how = exit.signal === null ? `exit code ${exit.code}` : `signal ${exit.signal}`;
  const text =
    `${exit.forced ? `not stopped after ${STOP_GRACE_MS / 1000} s, killed` : `${how} after ${exit.ms} ms`}; ` +
    `${left.length} of its ${workers.length} worker processes left running after it exited`;
  return { ...exit, left: left.length, ok: !exit.forced && exit.code === 0 && left.length === 0, text };
}

function commitOf() {
  try {
    const git = (...args) => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain') === '' ? '' : ' (with uncommitted changes)'}`;
  } catch {
    return 'unknown';
  }
}

/** Everything the report says, as plain data (also written as JSON beside the report). */
export function summarize({ options, ledger, traffic, server, before, after, exit, timeline }) {
  const totals = ledger.totals();
  const growth = (from, to) => ((to - from) / from) * 100;
  const faults = [...traffic.faults].map(([kind, c]) => ({ kind, ...c }));
  const missing = faults.filter((f) => f.done === 0).map((f) => f.kind);
  const rssGrowth = growth(before.rssKib, after.rssKib);
  const fdGrowth = growth(before.fds.count, after.fds.count);
  const sorted = [...traffic.recoveries].sort((a, b) => a - b);
  const checks = [
    { ok: totals.unanswered === 0, text: `every accepted request was answered: ${totals.answered} of ${totals.accepted}` },
    { ok: totals.unexpected === 0, text: `no unexpected status: ${totals.unexpected}` },
    {
      ok: rssGrowth <= LIMIT_PCT,
      text: `RSS grew by at most ${LIMIT_PCT}%: ${rssGrowth.toFixed(2)}% (${before.rssKib} → ${after.rssKib} KiB)`,
    },
    {
      ok: fdGrowth <= LIMIT_PCT,
      text: `open file descriptors grew by at most ${LIMIT_PCT}%: ${fdGrowth.toFixed(2)}% (${before.fds.count} → ${after.fds.count})`,
    },
    { ok: missing.length === 0, text: `every fault took effect at least once${missing.length ? `; never: ${missing.join(', ')}` : ''}` },
    {
      ok: traffic.problems.length === 0,
      text: `the pool came back after every fault, nothing left queued: ${traffic.problems.length} problems`,
    },
    { ok: exit.ok, text: `the server stopped cleanly on SIGTERM: ${exit.text}` },
  ];
  return {
    date: new Date().toISOString(),
    commit: commitOf(),
    node: process.version,
    cores: cpus().length,
    seconds: options.seconds,
    warmupSeconds: options.warmupSeconds,
    seed: options.seed,
    clients: CLIENTS,
    model: MODEL,
    config: MODEL_CONFIG,
    gc: { min: MIN_GCS, max: MAX_GCS, gapMs: GC_GAP_MS, youngMinKib: YOUNG_MIN_KIB },
    clientTimeoutS: CLIENT_TIMEOUT_MS / 1000,
    limitPct: LIMIT_PCT,
    serverPid: server.pid,
    pass: checks.every((c) => c.ok),
    checks,
    totals,
    kinds: Object.keys(KINDS).map((kind) => {
      const c = ledger.counts(kind);
      return { kind, ...c, statuses: [...c.statuses].sort(([a], [b]) => a.localeCompare(b)) };
    }),
    faults,
    recovery: {
      limitS: RECOVERY_LIMIT_MS / 1000,
      count: sorted.length,
      medianMs: sorted.length ? Math.round(median(sorted)) : 0,
      maxMs: sorted.length ? Math.round(sorted.at(-1)) : 0,
    },
    before,
    after,
    rssGrowthPct: rssGrowth,
    fdGrowthPct: fdGrowth,
    exit,
    timeline,
    problems: traffic.problems,
    unexpectedExamples: ledger.unexpectedExamples,
    unansweredExamples: ledger.unansweredExamples,
  };
}

async function main() {
  const options = readOptions(process.argv.slice(2), process.env);
  const dir = mkdtempSync(join(tmpdir(), 'kiln-soak-'));
  let server;
  try {
    log(`archiving the model, seed ${options.seed}`);
    const archive = archiveSoakModel(dir, { name: MODEL, config: MODEL_CONFIG });
    const gcLog = join(dir, 'gc.log');
    server = await startServer(['--models', `${MODEL}=${archive}`], ['--expose-gc', '--import', GC_HOOK], { KILN_SOAK_GC_LOG: gcLog });
    log(
      `kiln serve (pid ${server.pid}) is ready at ${server.inference}; ${options.seconds} s of traffic, ${options.warmupSeconds} s of it warm-up`,
    );
    const ledger = new Ledger();
    const traffic = new Traffic({ server, model: MODEL, ledger, seed: options.seed, clients: CLIENTS });
    const timeline = sampleEverySecond(server.pid);
    await traffic.run(options.warmupSeconds * 1000);
    const before = await settleAndMeasure({ traffic, ledger, server, gcLog }, 'after warm-up');
    await traffic.run((options.seconds - options.warmupSeconds) * 1000);
    const after = await settleAndMeasure({ traffic, ledger, server, gcLog }, 'at the end');
    timeline.stop();
    const exit = await stopServer(server);
    const summary = summarize({ options, ledger, traffic, server, before, after, exit, timeline: timeline.samples });
    server = undefined;
    const report = renderReport(summary);
    mkdirSync(dirname(options.report), { recursive: true });
    writeFileSync(options.report, report + '\n');
    writeFileSync(options.report.replace(/(\.md)?$/, '.json'), JSON.stringify(summary, null, 2) + '\n');
    process.stdout.write(report + '\n');
    log(`${summary.pass ? 'PASS' : 'FAIL'}; report written to ${options.report}`);
    process.exitCode = summary.pass ? 0 : 1;
  } finally {
    if (server !== undefined) killTree(server.pid);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  log(`error: ${error.stack ?? error}`);
  process.exitCode = 1;
});
