// Kiln on a GPU, checked in one run (issue #16): which execution providers load, in-process
// session.run throughput on the GPU provider at batch 1, 8 and 32, `kiln serve` on the same model
// with batching as a ratio of the best of those, and the GPU's outputs against the CPU's.
// scripts/gpu-check.sh runs it, on the device machine from what scripts/gpu-pack.sh packed; the
// GPU guide (docs/guides/gpu.md) says how to read it.
//
// Environment, all optional (seconds and counts; the defaults in brackets are the GPU's, then the
// CPU rehearsal's):
//   KILN_GPU_CHECK_PROVIDER   auto (each of cuda, webgpu that loads here), cuda, webgpu, or cpu: a
//                             rehearsal on the CPU with short windows, everything CPU against CPU
//   KILN_GPU_CHECK_JSON       where to write the JSON report (gpu-check.sh: $OUT/gpu-check.json)
//   _WARMUP [3, 0.3]  _SECONDS (in-process window) [5, 1]  _KILN_SECONDS [10, 2]  _BATCHES [1,8,32]
//   _BATCH_SIZE (Kiln's) [32, 8]  _MAX_BATCH_DELAY [auto]  _CONCURRENCY [64, 16]  _LOAD_PROCESSES [4, 1]
//   _THREADS (intra-op, both sides) [1]  _MIN_RATIO [0.9]  _TOLERANCE [1e-3]  _DEADLINE [360]
// Exit status: 0 when every check passed, 1 when one failed (all is printed either way), 2 when
// the check could not run (no GPU provider loads, a bad setting).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSession } from '@kiln/handler-sdk';
import { listNvidiaGpus, probeProviders, providerSummary } from '@kiln/handler-sdk/runtime';
import * as ort from 'onnxruntime-node';
import { prepare } from '../bench/compare/contestants.mjs';
import { randomFloats, writeConvNet } from '../bench/compare/models.mjs';
import { serveAndLoad } from './gpu-check-kiln.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const env = process.env;
const requested = (env.KILN_GPU_CHECK_PROVIDER || 'auto').toLowerCase();
const cpuMode = requested === 'cpu';
/** The GPU providers the check knows, in order of preference. */
const GPU_PROVIDERS = ['cuda', 'webgpu'];

const problems = [];
const setting = (name, gpu, cpu) => {
  const raw = env[`KILN_GPU_CHECK_${name}`];
  if (raw === undefined || raw === '') return cpuMode ? cpu : gpu;
  const value = Number(raw);
  if (!(value > 0)) problems.push(`KILN_GPU_CHECK_${name} must be a positive number, received "${raw}"`);
  return value;
};
const batches = (env.KILN_GPU_CHECK_BATCHES || '1,8,32').split(',').map(Number);
if (!batches.every((b) => Number.isInteger(b) && b > 0))
  problems.push(`KILN_GPU_CHECK_BATCHES must list positive integers, received "${env.KILN_GPU_CHECK_BATCHES}"`);
if (![...GPU_PROVIDERS, 'auto', 'cpu'].includes(requested))
  problems.push(`KILN_GPU_CHECK_PROVIDER must be auto, cuda, webgpu or cpu, received "${env.KILN_GPU_CHECK_PROVIDER}"`);
const settings = Object.freeze({
  warmupS: setting('WARMUP', 3, 0.3),
  inprocS: setting('SECONDS', 5, 1),
  kilnS: setting('KILN_SECONDS', 10, 2),
  batches,
  batchSize: setting('BATCH_SIZE', 32, 8),
  maxBatchDelay: env.KILN_GPU_CHECK_MAX_BATCH_DELAY || 'auto',
  concurrency: setting('CONCURRENCY', 64, 16),
  loadProcesses: setting('LOAD_PROCESSES', 4, 1),
  threads: setting('THREADS', 1, 1),
  correctnessBatch: 8,
  minRatio: setting('MIN_RATIO', 0.9, 0.9),
  tolerance: setting('TOLERANCE', 1e-3, 1e-3),
  deadlineS: setting('DEADLINE', 360, 360),
});

const report = {
  check: 'kiln-gpu-check',
  startedAt: new Date().toISOString(),
  mode: cpuMode ? 'cpu-rehearsal' : 'gpu',
  requested,
  settings,
  machine: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', gpus: null },
  probe: null,
  model: null,
  providers: [],
  errors: [],
  pass: false,
  exitCode: 2,
};
const line = (text = '') => console.log(text);
const section = (title) => line(`\n== ${title} ==`);
const fmt = (n, digits = 1) => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(digits) : n == null ? 'n/a' : String(n));
const sci = (n) => (typeof n === 'number' && Number.isFinite(n) ? n.toExponential(2) : n == null ? 'n/a' : String(n));
const save = () => env.KILN_GPU_CHECK_JSON && writeFileSync(env.KILN_GPU_CHECK_JSON, `${JSON.stringify(report, null, 2)}\n`);

let work;
let finished = false;
/** Prints the summary, writes the JSON and exits: the one way out, also on the deadline. */
function finish(code) {
  if (finished) return;
  finished = true;
  report.exitCode = code;
  report.pass = code === 0;
  printSummary();
  save();
  if (work && !env.KILN_GPU_CHECK_KEEP) rmSync(work, { recursive: true, force: true });
  // Writes to a pipe or a file are synchronous on Linux, so nothing printed is lost; procs.mjs
  // kills every child still running (a server, a load generator) on exit.
  process.exit(code);
}
// Whatever goes wrong outside a provider's own stages still ends with the summary and the JSON.
process.on('uncaughtException', (error) => {
  report.errors.push(String(error?.stack ?? error));
  line(`gpu-check: ${error?.stack ?? error}`);
  finish(1);
});
setTimeout(() => {
  report.errors.push(`stopped at the deadline (${settings.deadlineS} s, KILN_GPU_CHECK_DEADLINE)`);
  finish(1);
}, settings.deadlineS * 1000).unref();

if (problems.length > 0) {
  for (const p of problems) line(`gpu-check: ${p}`);
  report.errors.push(...problems);
  finish(2);
}

section('machine');
line(
  `node ${process.version}, ${cpus().length} CPU cores (${report.machine.cpuModel}), onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common}`,
);
// The GPUs nvidia-smi lists (as kiln doctor reads them), or null without a working nvidia-smi.
const nvidia = await listNvidiaGpus(process.env);
const gpus = nvidia.nvidiaSmi === 'listed' ? nvidia.gpus : null;
report.machine.gpus = gpus;
if (gpus === null) line('nvidia-smi: not found or failed (no NVIDIA driver here)');
else for (const g of gpus) line(`nvidia-smi: ${g.index}, ${g.name}, ${g.memoryMib} MiB, driver ${g.driver}`);

section('execution providers (probe)');
const probe = await probeProviders(['cpu', 'webgpu', 'cuda', 'tensorrt']);
report.probe = { onnxruntime: probe.onnxruntime, summary: providerSummary(probe), providers: probe.providers };
for (const p of probe.providers)
  line(`${p.name.padEnd(9)}${p.loadable ? 'loads' : `does not load: ${p.reason}\n${' '.repeat(9)}fix: ${p.fix}`}`);
const loads = (name) => probe.providers.some((p) => p.name === name && p.loadable);
const chosen = cpuMode ? ['cpu'] : requested === 'auto' ? GPU_PROVIDERS.filter(loads) : [requested].filter(loads);
if (chosen.length === 0) {
  const asked = requested === 'auto' ? GPU_PROVIDERS : [requested];
  const why = asked.map((name) => {
    const p = probe.providers.find((q) => q.name === name);
    return `${name}: ${p?.reason ?? 'not known to this onnxruntime-node'}${p?.fix ? ` (fix: ${p.fix})` : ''}`;
  });
  const message = `cannot check the GPU: ${asked.join(' and ')} ${asked.length > 1 ? 'do' : 'does'} not load here. ${why.join('; ')}`;
  line(`\ngpu-check: ${message}`);
  report.errors.push(message);
  finish(2);
}
line(cpuMode ? 'checking: cpu (rehearsal: no GPU is used, every figure is CPU against CPU)' : `checking: ${chosen.join(', ')}`);

section('model');
work = mkdtempSync(join(env.KILN_GPU_CHECK_WORK || tmpdir(), 'kiln-gpu-check-'));
const model = await prepare(writeConvNet(work), work);
const itemLength = model.dims.reduce((a, b) => a * b, 1);
report.model = { key: model.key, title: model.title, dims: model.dims, input: model.inputName, output: model.outputName };
line(`${model.title}: ${model.inputName} [batch, ${model.dims.join(', ')}] → ${model.outputName}`);

// The correctness input and its CPU output, computed once for every provider: a session on all cores.
const checkInput = randomFloats(settings.correctnessBatch * itemLength, 2, 4242);
const feedsOf = (data, batch) => ({ [model.inputName]: new ort.Tensor('float32', data, [batch, ...model.dims]) });
const cpuOutput = await (async () => {
  const { session } = await createSession(model.path, {
    executionProviders: ['cpu'],
    deviceId: undefined,
    intraOpNumThreads: cpus().length,
  });
  try {
    return /** @type {Float32Array} */ ((await session.run(feedsOf(checkInput, settings.correctnessBatch)))[model.outputName].data);
  } finally {
    await session.release();
  }
})();

for (const provider of chosen) {
  const result = {
    provider,
    device: provider === 'cpu' ? 'cpu' : 'gpu',
    inproc: null,
    correctness: null,
    kiln: null,
    checks: [],
    errors: [],
  };
  report.providers.push(result);
  try {
    await inProcess(provider, result);
  } catch (error) {
    result.errors.push(`in-process: ${error.message}`);
    line(`in-process ${provider} failed: ${error.message}`);
  }
  save();
  try {
    await kiln(provider, result);
  } catch (error) {
    result.errors.push(`kiln: ${error.message}${error.cause ? ` (${error.cause.message ?? error.cause})` : ''}`);
    line(`Kiln on ${provider} failed: ${error.message}`);
  }
  judge(result);
  save();
}
finish(report.providers.every((r) => r.checks.length > 0 && r.checks.every((c) => c.pass !== false)) ? 0 : 1);

/** session.run in a loop at each batch size on one session, then the correctness batch against the CPU's. */
async function inProcess(provider, result) {
  section(`in-process session.run on ${provider} (${settings.threads} intra-op thread${settings.threads > 1 ? 's' : ''})`);
  const t0 = performance.now();
  const { session } = await createSession(model.path, {
    executionProviders: [provider],
    deviceId: provider === 'cuda' ? 0 : undefined,
    intraOpNumThreads: settings.threads,
  });
  line(
    `session created in ${fmt(performance.now() - t0, 0)} ms; warm-up ${settings.warmupS} s and a ${settings.inprocS} s window per batch size`,
  );
  try {
    const rows = [];
    for (const batch of settings.batches) {
      const data = randomFloats(batch * itemLength, 2, 100 + batch);
      const run = () => session.run(feedsOf(data, batch));
      const warmEnd = performance.now() + settings.warmupS * 1000;
      do await run();
      while (performance.now() < warmEnd);
      let runs = 0;
      const start = performance.now();
      do {
        await run();
        runs++;
      } while (performance.now() < start + settings.inprocS * 1000);
      const seconds = (performance.now() - start) / 1000;
      const row = { batch, runs, seconds, imagesPerS: (runs * batch) / seconds, msPerRun: (seconds * 1000) / runs };
      rows.push(row);
      line(
        `batch ${String(batch).padStart(3)}: ${fmt(row.imagesPerS).padStart(9)} images/s, ${fmt(row.msPerRun, 2).padStart(8)} ms per run (${runs} runs)`,
      );
    }
    const best = rows.reduce((a, b) => (b.imagesPerS > a.imagesPerS ? b : a));
    result.inproc = { threads: settings.threads, batches: rows, best: { batch: best.batch, imagesPerS: best.imagesPerS } };

    section(`correctness: ${provider} against cpu`);
    const got = /** @type {Float32Array} */ ((await session.run(feedsOf(checkInput, settings.correctnessBatch)))[model.outputName].data);
    const maxAbsDiff = maxDiff(got, cpuOutput);
    const maxAbsReference = cpuOutput.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    result.correctness = {
      against: 'cpu',
      batch: settings.correctnessBatch,
      values: got.length,
      maxAbsDiff,
      maxAbsReference,
      tolerance: settings.tolerance,
    };
    line(
      `batch ${settings.correctnessBatch}, ${got.length} outputs: max |${provider} − cpu| = ${sci(maxAbsDiff)} (outputs up to ${fmt(maxAbsReference, 3)}; tolerance ${sci(settings.tolerance)})`,
    );
  } finally {
    await session.release();
  }
}

/** Kiln on the same model, batching on: its throughput as a ratio of the best in-process figure, and whether it ran where asked. */
async function kiln(provider, result) {
  section(`Kiln: kiln serve on ${provider}, batchSize ${settings.batchSize}, maxBatchDelay ${settings.maxBatchDelay}`);
  const config = [
    ...(cpuMode
      ? ['deviceType: cpu', 'executionProviders: [cpu]']
      : // fallback: false: a GPU model whose provider does not load fails, rather than run on the CPU.
        ['deviceType: gpu', `executionProviders: [${provider}]`, 'fallback: false']),
    `batchSize: ${settings.batchSize}`,
    `maxBatchDelay: ${settings.maxBatchDelay}`,
    'minWorkers: 1',
    'maxWorkers: 1',
    `intraOpNumThreads: ${settings.threads}`,
  ];
  line(`model-config.yaml: ${config.join('; ')}`);
  const { answer, ...served } = await serveAndLoad({ root, work, model, label: provider, config, settings, log: line });
  const { inUse, fromMetrics } = served;
  const best = result.inproc?.best;
  result.kiln = {
    config,
    ...served,
    providerOk:
      inUse.deviceType === result.device &&
      inUse.executionProviders?.[0] === provider &&
      inUse.workers.length > 0 &&
      inUse.workers.every((w) => w === provider) &&
      fromMetrics.provider === provider &&
      fromMetrics.device === result.device,
    answerMaxAbsDiff: maxDiff(answer, model.reference),
    ratio: best ? served.imagesPerS / best.imagesPerS : null,
  };
  line(`first answer: max |Kiln − cpu| = ${sci(result.kiln.answerMaxAbsDiff)}`);
  if (best) line(`ratio to in-process (batch ${best.batch}, ${fmt(best.imagesPerS)} images/s): ${fmt(result.kiln.ratio, 3)}×`);
}

/** The largest |a − b|; Infinity for a NaN or a length mismatch. */
function maxDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Number.isNaN(a[i]) ? Infinity : Math.abs(a[i] - b[i]));
  return worst;
}

/** The checks of one provider, each with its value, target and verdict (pass: null is information only). */
function judge(r) {
  const k = r.kiln;
  r.checks = [
    {
      name: `in-process best (batch ${r.inproc?.best.batch ?? '?'})`,
      value: r.inproc ? `${fmt(r.inproc.best.imagesPerS)} img/s` : 'failed',
      target: '',
      pass: r.inproc ? null : false,
    },
    {
      name: `Kiln batched (c=${k?.concurrency ?? '?'}, batchSize ${settings.batchSize})`,
      value: k ? `${fmt(k.imagesPerS)} img/s` : 'failed',
      target: '',
      pass: k ? null : false,
    },
    {
      name: 'Kiln / in-process',
      value: k?.ratio != null ? `${fmt(k.ratio, 3)}×` : 'n/a',
      target: `≥ ${settings.minRatio}×`,
      pass: k?.ratio != null && k.ratio >= settings.minRatio,
    },
    {
      name: 'Kiln requests failed',
      value: k ? String(Object.values(k.errors).reduce((s, v) => s + v, 0)) : 'n/a',
      target: '0',
      pass: k != null && Object.keys(k.errors).length === 0,
    },
    {
      name: 'provider in use (describe; metrics)',
      value: k ? `${k.inUse.deviceType} [${k.inUse.workers}]; ${k.fromMetrics.provider},${k.fromMetrics.device}` : 'n/a',
      target: `${r.device} [${r.provider}]; ${r.provider},${r.device}`,
      pass: k?.providerOk === true,
    },
    { name: 'mean batch size', value: k ? fmt(k.meanBatchSize, 2) : 'n/a', target: '', pass: null },
    {
      name: `max |${r.provider} − cpu| (batch ${settings.correctnessBatch})`,
      value: sci(r.correctness?.maxAbsDiff),
      target: `≤ ${sci(settings.tolerance)}`,
      pass: r.correctness != null && r.correctness.maxAbsDiff <= settings.tolerance,
    },
    {
      name: 'max |Kiln answer − cpu|',
      value: sci(k?.answerMaxAbsDiff),
      target: `≤ ${sci(settings.tolerance)}`,
      pass: k != null && k.answerMaxAbsDiff <= settings.tolerance,
    },
  ];
}

function printSummary() {
  // A GPU provider with no GPU listed ran on whatever adapter it found: Mesa's software Vulkan
  // driver (scripts/soft-vulkan.sh), for one. Its figures prove the path, not a GPU's speed.
  const what = cpuMode
    ? 'CPU rehearsal: cpu against cpu, no GPU used; not a GPU result'
    : report.machine.gpus === null || report.machine.gpus.length === 0
      ? 'no GPU listed by nvidia-smi: the provider ran on the adapter it found, a software one perhaps; not a GPU result'
      : 'GPU';
  section(`summary (${what})`);
  // Columns as wide as their longest cell, two spaces apart, so that no cell runs into the next.
  const checks = report.providers.flatMap((r) => r.checks);
  const width = (cells) => Math.max(0, ...cells.map((cell) => cell.length)) + 2;
  const [nameW, valueW, targetW] = [
    width(checks.map((c) => c.name)),
    width(checks.map((c) => c.value)),
    width(checks.map((c) => c.target)),
  ];
  for (const r of report.providers) {
    for (const c of r.checks) {
      const verdict = c.pass === null ? '' : c.pass ? 'PASS' : 'FAIL';
      line(`${r.provider.padEnd(8)}${c.name.padEnd(nameW)}${c.value.padEnd(valueW)}${c.target.padEnd(targetW)}${verdict}`.trimEnd());
    }
    for (const e of r.errors) line(`${r.provider.padEnd(8)}error: ${e.split('\n')[0]}`);
  }
  for (const e of report.errors) line(`error: ${e}`);
  const verdict = report.exitCode === 0 ? 'PASS' : report.exitCode === 1 ? 'FAIL' : 'NOT RUN';
  line(`overall: ${verdict}${cpuMode ? ' (CPU rehearsal)' : ''}`);
}
