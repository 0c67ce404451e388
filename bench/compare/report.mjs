// Turns the raw results into bench/results/compare.md: medians over rounds, every Kiln figure
// next to its ratio against the naive server and in-process ONNX Runtime of the same run, and the
// targets, each marked held or NOT held.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const version = (pkg) => JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')).version;

/** What the figures were measured on, and which Kiln. */
export function describeMachine(kilnRoot) {
  let kiln;
  if (existsSync(join(kilnRoot, 'KILN_REF'))) kiln = `${readFileSync(join(kilnRoot, 'KILN_REF'), 'utf8').trim()} (built by build-ref.mjs)`;
  else {
    try {
      const git = (...args) => execFileSync('git', ['-C', kilnRoot, ...args], { encoding: 'utf8' }).trim();
      kiln = `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', 'packages') ? ' + uncommitted changes in packages/' : ''}`;
    } catch {
      kiln = basename(kilnRoot);
    }
  }
  return {
    cpu: cpus()[0]?.model ?? '?',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntimeNode: version('onnxruntime-node'),
    fastify: version('fastify'),
    kiln,
    kilnRoot,
  };
}

export const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** [min, max] over rounds, shown next to the median so that a reader sees how much rounds differed. */
const range = (xs) => {
  const s = xs.filter((x) => typeof x === 'number');
  return s.length > 1 ? [Math.min(...s), Math.max(...s)] : undefined;
};

/** Medians over rounds, per model, contestant and mode ('single' = batchSize 1, 'batched'). */
export function summarise(rows) {
  const out = {};
  for (const row of rows) {
    const at = ((out[row.model] ??= {})[row.contestant] ??= {});
    (at[row.mode] ??= []).push(row);
  }
  for (const byContestant of Object.values(out)) {
    for (const byMode of Object.values(byContestant)) {
      for (const [mode, list] of Object.entries(byMode)) {
        const ok = list.filter((r) => !r.error);
        const nonOk = (r) =>
          Object.values({ ...r.latency?.errors })
            .concat(Object.values({ ...r.throughput?.errors }))
            .reduce((a, b) => a + b, 0);
        byMode[mode] = {
          rounds: ok.length,
          failures: list.filter((r) => r.error).map((r) => r.error),
          setup: list[0].setup,
          spawnMs: median(ok.map((r) => r.spawnMs)),
          p50: median(ok.map((r) => r.latency?.p50)),
          p50OneThread: median(ok.map((r) => r.latencyOneThread?.p50)),
          p99OneThread: median(ok.map((r) => r.latencyOneThread?.p99)),
          p99: median(ok.map((r) => r.latency?.p99)),
          rps: median(ok.map((r) => r.throughput?.rps)),
          p50Range: range(ok.map((r) => r.latency?.p50)),
          rpsRange: range(ok.map((r) => r.throughput?.rps)),
          non200: ok.reduce((a, r) => a + nonOk(r), 0),
        };
      }
    }
  }
  return out;
}

const ms = (x) => (x === undefined ? '—' : x < 10 ? x.toFixed(2) : x.toFixed(1));
const spread = (fmt, x, r) => (r ? `${fmt(x)} (${fmt(r[0])}–${fmt(r[1])})` : fmt(x));
const times = (a, b) => (a === undefined || b === undefined ? '—' : `${(a / b).toFixed(2)}×`);
const perS = (x) => (x === undefined ? '—' : x.toFixed(0));
const split = (s) => (s ? `${s.procs}×${s.threads ?? 'Kiln default'}` : '—');
const batchOf = (s) =>
  !s ? '—' : s.batchSize === 1 ? '1' : `${s.batchSize}, ${s.maxBatchDelay === 'auto' ? 'auto' : `${s.maxBatchDelay} ms`}`;
const MODE = { single: 'batchSize 1', batched: 'with batching' };
const held = (ok) => (ok ? '**held**' : '**NOT held**');

export function renderMemory(memory) {
  if (memory.length === 0) return '';
  const lines = [
    '| contestant | requests (warm-up) at c | RSS after warm-up MiB | RSS at end MiB | growth MiB | growth | req/s | non-200 | other processes |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const m of memory) {
    if (m.error) {
      lines.push(`| ${m.label} | failed: ${m.error.split('\n')[0]} | | | | | | | |`);
      continue;
    }
    const parts = (s) =>
      `${s.total.toFixed(0)} (server ${s.server.toFixed(0)}${s.workers.length ? `, workers ${s.workers.map((w) => w.mb.toFixed(0)).join(' + ')}` : ''})`;
    const errors = Object.values({ ...m.warmupLoad.errors, ...m.load.errors }).reduce((a, b) => a + b, 0);
    lines.push(
      `| ${m.label} | ${m.requests} (${m.warmup}) at ${m.concurrency} | ${parts(m.before)} | ${parts(m.after)} | ${m.growthMb.toFixed(1)} | ${m.growthPct.toFixed(1)}% | ${perS(m.load.rps)} | ${errors} | ${m.otherShare === undefined ? '—' : `${(100 * m.otherShare).toFixed(0)}% of the cores`} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Per-window ratios of a contestant's c=1 p50 to the naive server's in the same window. */
export function pairedRatios(paired = [], model, id) {
  const windows = paired.filter((w) => w.model === model && w.p50[id] !== undefined && w.p50.naive !== undefined);
  const ratios = windows.map((w) => w.p50[id] / w.p50.naive);
  return { ratios, median: median(ratios), p50: median(windows.map((w) => w.p50[id])), range: range(ratios) };
}

/** Per-start differences of a contestant's spawn → first prediction to the naive server's start next to it. */
export function pairedSpawnExtra(pairedSpawns = [], model, id) {
  const starts = pairedSpawns.filter((w) => w.model === model && w.spawnMs[id] !== undefined && w.spawnMs.naive !== undefined);
  const extras = starts.map((w) => w.spawnMs[id] - w.spawnMs.naive);
  return { extras, median: median(extras), ms: median(starts.map((w) => w.spawnMs[id])), range: range(extras) };
}

function renderPaired(r) {
  const lines = [
    `## c=1 latency, paired windows (ms; ${r.options.pairedWindows} windows of ${r.options.pairedSeconds} s per server, alternating)`,
    '',
    'Every server started once per model at its defaults (batch 1) and left idle while the others are measured; the c=1 targets are judged on the median of per-window ratios to the naive server.',
    '',
    '| model | contestant | p50 (median over windows) | ×naive (median of per-window ratios) | ratio range |',
    '|---|---|---|---|---|',
  ];
  for (const model of r.models) {
    for (const c of r.contestants.filter((x) => x.kind !== 'inproc')) {
      const x = pairedRatios(r.paired, model.key, c.id);
      if (x.ratios.length === 0) continue;
      lines.push(
        `| ${model.key} | ${c.label} | ${ms(x.p50)} | ${x.median.toFixed(2)}× | ${x.range ? `${x.range[0].toFixed(2)}–${x.range[1].toFixed(2)}×` : '—'} |`,
      );
    }
  }
  if (r.pairedSpawns?.length) {
    lines.push(
      '',
      `Spawn → first prediction in paired starts (${r.options.pairedWindows} per server, alternating):`,
      '',
      '| model | contestant | ms (median) | − naive (median of per-start differences) | range |',
      '|---|---|---|---|---|',
    );
    for (const model of r.models) {
      for (const c of r.contestants.filter((x) => x.kind !== 'inproc')) {
        const x = pairedSpawnExtra(r.pairedSpawns, model.key, c.id);
        if (x.extras.length === 0) continue;
        const signed = (v) => `${v >= 0 ? '+' : ''}${v.toFixed(0)}`;
        lines.push(
          `| ${model.key} | ${c.label} | ${perS(x.ms)} | ${signed(x.median)} | ${x.range ? `${signed(x.range[0])} to ${signed(x.range[1])}` : '—'} |`,
        );
      }
    }
  }
  return lines;
}

/** The targets, each with its figure and held / NOT held. */
function targets(r) {
  const out = [];
  const s = r.summary;
  const limits = { 'kiln-thread': [1.1], 'kiln-process': [1.35], kiln: [1.1, 1.35] };
  for (const c of r.contestants.filter((x) => x.kind === 'kiln')) {
    for (const model of r.models) {
      const naive = s[model.key]?.naive?.single;
      const own = s[model.key]?.[c.id] ?? {};
      for (const limit of limits[c.id]) {
        const pairedRatio = pairedRatios(r.paired, model.key, c.id).median;
        const ratio = pairedRatio ?? own.single?.p50 / naive?.p50;
        const basis = pairedRatio === undefined ? '' : `${pairedRatio.toFixed(2)}× in paired windows; `;
        out.push(
          `${held(ratio <= limit)} c=1 p50, ${model.key}, ${c.label}, batchSize 1, defaults: ≤ ${limit.toFixed(2)}× naive (${basis}${times(own.single?.p50, naive?.p50)} over rounds; ${times(own.single?.p50, naive?.p50OneThread)} the naive server tuned to 1 thread)`,
        );
      }
      if (model.key === 'cls') {
        const ratio = own.batched?.rps / naive?.rps;
        out.push(
          `${held(ratio >= 1.5)} c=${r.options.concurrency} throughput with batching, cls, ${c.label}: ≥ 1.50× naive (${times(own.batched?.rps, naive?.rps)})`,
        );
      } else {
        const inproc = s[model.key]?.inproc?.batched;
        const ratio = own.batched?.rps / inproc?.rps;
        out.push(
          `${held(ratio >= 0.85)} c=${r.options.concurrency} throughput with batching, ${model.key}, ${c.label}: ≥ 0.85× in-process batched (${times(own.batched?.rps, inproc?.rps)})`,
        );
      }
      const pairedExtra = pairedSpawnExtra(r.pairedSpawns, model.key, c.id).median;
      const roundsExtra = own.single?.spawnMs - naive?.spawnMs;
      const extra = pairedExtra ?? roundsExtra;
      const basis =
        pairedExtra === undefined
          ? ''
          : `, paired starts; over rounds naive + ${Number.isNaN(roundsExtra) ? '—' : roundsExtra.toFixed(0)} ms`;
      out.push(
        `${held(extra <= 300)} spawn → first prediction, ${model.key}, ${c.label}: ≤ naive + 300 ms (naive + ${Number.isNaN(extra) ? '—' : extra.toFixed(0)} ms${basis})`,
      );
    }
    const m = r.memory.find((x) => x.contestant === c.id);
    if (m || r.options.memory)
      out.push(
        `${held(m?.growthPct < 5)} RSS growth over ${m?.requests ?? '?'} requests, ${c.label}: < 5% (${m?.growthPct?.toFixed(1) ?? '—'}%)`,
      );
  }
  return out;
}

export function render(r) {
  const s = r.summary;
  const o = r.options;
  const m = r.machine;
  const lines = [
    '# Kiln side by side: in-process ONNX Runtime, a naive server, Kiln',
    '',
    `- Date: ${r.date}${o.quick ? ' — **quick mode (smoke run): short windows, no calibration, not for comparison**' : ''}`,
    `- Machine: ${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB; Node ${m.node}; onnxruntime-node ${m.onnxruntimeNode}; fastify ${m.fastify}`,
    `- Kiln: ${m.kiln}${o.noIsolationKey ? '; model-config without the `isolation` key (KILN_BENCH_NO_ISOLATION_KEY=1)' : ''}`,
    `- ${o.rounds} interleaved round(s), contestant order rotated each round; figures are medians over rounds`,
    `- Windows: c=1 latency ${o.latencySeconds} s after ${o.latencyWarmupS} s of warm-up; throughput ${o.seconds} s at c=${o.concurrency} after ${o.warmupS} s; calibration tries ${o.calibrateSeconds ? `${o.calibrateSeconds} s each` : 'off (first batching candidate, ' + o.threads + ' procs × 1 thread)'}`,
    `- ONNX Runtime intra-op threads in total: ${o.threads} for every contestant (procs or workers × threads each); batching candidates (batchSize:maxBatchDelay ms): ${o.batching.map((b) => `${b.batchSize}:${b.maxBatchDelay}`).join(', ')}`,
    `- Wall time of this run: ${(r.wallS / 60).toFixed(1)} min`,
    `- Measurements during which other processes used over 10% of the cores: ${r.rows.filter((x) => x.otherShare > 0.1).length} of ${r.rows.length}`,
    `- Other processes on the machine used ${r.contention.otherCpuS.toFixed(0)} CPU-s during the run (${(100 * r.contention.otherShare).toFixed(1)}% of its cores; ${r.contention.busyAtStart === undefined ? '' : `in the second before the start: ${(100 * r.contention.busyAtStart).toFixed(0)}%; `}one-minute load average then ${r.contention.loadAtStart.toFixed(2)})${r.contention.otherShare > 0.05 ? ' — **the machine was not quiet: figures are disturbed, rerun for comparisons**' : ''}`,
    '',
    'Ratios compare figures of this run only. In-process is `session.run` in a loop with no HTTP (a floor, not a server).',
    'The naive server is bench/compare/naive-server.mjs: fastify, one session with all threads, batch 1.',
    '',
    '## Models',
    '',
    ...r.models.map((x) => `- \`${x.key}\`: ${x.title}; input \`${x.input}\`, output \`${x.output}\``),
    '',
    '## Setups chosen',
    '',
    `Latency and spawn are measured at each contestant's defaults, one process or worker: the naive server and in-process with ONNX Runtime's default of ${o.threads} threads (all cores), Kiln with the intra-op threads it chooses itself. The naive server and in-process are also timed at 1 thread (\`1 thread, tuned\` rows), so the report shows what the thread choice alone is worth. Throughput uses each contestant's best split (procs × threads) of the same ${o.threads} threads, chosen once by a calibration try of each split with the first batching candidate, then, at that split, each batching candidate. The naive server is always 1 × ${o.threads}, batch 1. The targets judge c=1 at batchSize 1; a lone request's wait with batching on is shown, and is the subject of adaptive batching (a later issue).`,
    '',
    '| model | contestant | batchSize 1: split | with batching: split | with batching: batchSize, maxBatchDelay |',
    '|---|---|---|---|---|',
  ];
  for (const model of r.models) {
    for (const c of r.contestants) {
      const ch = r.chosen[model.key]?.[c.id] ?? {};
      lines.push(
        `| ${model.key} | ${c.label} | ${split(ch.single)} | ${split(ch.batched)} | ${ch.batched ? batchOf(ch.batched) : 'no batching'} |`,
      );
    }
  }
  lines.push('', '## c=1 latency (ms, sequential requests, each at its defaults)', '');
  for (const model of r.models) {
    const naive = s[model.key]?.naive?.single;
    const inproc = s[model.key]?.inproc?.single;
    lines.push(
      `### ${model.key}`,
      '',
      '| contestant | config | p50 (range over rounds) | p99 | p50 ×naive | p50 ×in-process | p99 ×naive | non-200 |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const c of r.contestants) {
      for (const mode of c.kind === 'kiln' ? ['single', 'batched'] : ['single']) {
        const x = s[model.key]?.[c.id]?.[mode] ?? {};
        const cfg = mode === 'single' ? 'batchSize 1' : `batch ${batchOf(x.setup)} (a lone request)`;
        lines.push(
          `| ${c.label} | ${cfg} | ${spread(ms, x.p50, x.p50Range)} | ${ms(x.p99)} | ${times(x.p50, naive?.p50)} | ${times(x.p50, inproc?.p50)} | ${times(x.p99, naive?.p99)} | ${x.non200 ?? '—'}${fails(x)} |`,
        );
        if (mode === 'single' && x.p50OneThread !== undefined) {
          lines.push(
            `| ${c.label}, 1 thread, tuned | batchSize 1 | ${ms(x.p50OneThread)} | ${ms(x.p99OneThread)} | ${times(x.p50OneThread, naive?.p50)} | ${times(x.p50OneThread, inproc?.p50)} | ${times(x.p99OneThread, naive?.p99)} | — |`,
          );
        }
      }
    }
    lines.push('');
  }
  if (r.paired?.length || r.pairedSpawns?.length) lines.push(...renderPaired(r), '');
  lines.push(`## Throughput at c=${o.concurrency} (requests/s; in-process: items/s)`, '');
  for (const model of r.models) {
    const naive = s[model.key]?.naive?.single;
    lines.push(
      `### ${model.key}`,
      '',
      '| contestant | config | procs × threads | req/s (range over rounds) | ×naive | ×in-process (same config) | ×in-process batched | non-200 |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const c of r.contestants) {
      for (const mode of c.kind === 'naive' ? ['single'] : ['single', 'batched']) {
        const x = s[model.key]?.[c.id]?.[mode] ?? {};
        const inproc = s[model.key]?.inproc?.[mode];
        lines.push(
          `| ${c.label} | ${mode === 'single' ? 'batchSize 1' : `batch ${batchOf(x.setup)}`} | ${split(x.setup)} | ${spread(perS, x.rps, x.rpsRange)} | ${times(x.rps, naive?.rps)} | ${times(x.rps, inproc?.rps)} | ${times(x.rps, s[model.key]?.inproc?.batched?.rps)} | ${x.non200 ?? '—'}${fails(x)} |`,
        );
      }
    }
    lines.push('');
  }
  lines.push(
    `## Spawn → first prediction (ms, median of ${o.rounds})`,
    '',
    'From spawning the process to the first 200 answer (polled every ~5 ms with the real request); in-process: to the end of the first `session.run`.',
    '',
  );
  lines.push('| model | contestant | ms | − naive | ×naive | ×in-process |', '|---|---|---|---|---|---|');
  for (const model of r.models) {
    const naive = s[model.key]?.naive?.single?.spawnMs;
    const inproc = s[model.key]?.inproc?.single?.spawnMs;
    for (const c of r.contestants) {
      const x = s[model.key]?.[c.id]?.single?.spawnMs;
      lines.push(
        `| ${model.key} | ${c.label} | ${perS(x)} | ${x === undefined || naive === undefined ? '—' : `${x - naive >= 0 ? '+' : ''}${(x - naive).toFixed(0)}`} | ${times(x, naive)} | ${times(x, inproc)} |`,
      );
    }
  }
  if (r.memory.length) lines.push('', '## Memory under load (cls, batchSize 1, 1 worker)', '', renderMemory(r.memory).trimEnd());
  lines.push('', '## Targets', '', ...targets(r).map((t) => `- ${t}`), '');
  if (r.calibration.length) {
    lines.push(
      '## Calibration tries',
      '',
      'A try during which other processes used over 10% of the cores is repeated once; both are listed.',
      '',
      '| model | contestant | mode | procs × threads | batch | req/s | other processes |',
      '|---|---|---|---|---|---|---|',
    );
    for (const t of r.calibration)
      lines.push(
        `| ${t.model} | ${t.contestant} | ${MODE[t.mode]} | ${split(t.setup)} | ${batchOf(t.setup)} | ${t.error ? `failed: ${t.error.split('\n')[0]}` : perS(t.rps)} | ${t.otherShare === undefined ? '—' : `${(100 * t.otherShare).toFixed(0)}%`} |`,
      );
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

const fails = (x) => (x.failures?.length ? ` (${x.failures.length} round(s) failed: ${x.failures[0].split('\n')[0].slice(0, 120)})` : '');
