// The in-process contestant: ONNX Runtime's session.run in a loop, no HTTP, no serialisation.
// It is the floor every server is measured against. It runs as a child process, like the
// servers, so that spawn → first prediction means the same thing for everyone, and so that the
// throughput run can use several processes at once.
//
//   node bench/compare/inproc.mjs '<json options>'
//
// Options: model (path), dims (one item's shape), threads (intra-op), batch, mode:
//   spawn       create the session, run once, print "first" and exit: the parent times it.
//   latency     sequential batch-1 runs: warmupS, then durationS; prints load.mjs's JSON shape.
//   throughput  prints "ready" once warm, waits for "go" on stdin so that every process of the
//               run measures the same window, then runs batches for durationS and prints
//               {items, durationS}.
import { createInterface } from 'node:readline';
import * as ort from 'onnxruntime-node';
import { inputFor } from './models.mjs';

const options = JSON.parse(process.argv[2]);
// The same session options as Kiln's workers use (handler-sdk createSession), so that the only
// difference between the contestants is what sits around session.run.
const session = await ort.InferenceSession.create(options.model, {
  intraOpNumThreads: options.threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
});
const inputName = session.inputNames[0];
const one = inputFor({ dims: options.dims });
const batch = options.batch ?? 1;
const data = new Float32Array(batch * one.length);
for (let i = 0; i < batch; i++) data.set(one, i * one.length);
// A fresh Tensor per run, as a server must build one per request; the data is shared, which
// spares the in-process side the copy a server makes, and so errs in its favour.
const feeds = () => ({ [inputName]: new ort.Tensor('float32', data, [batch, ...options.dims]) });

if (options.mode === 'spawn') {
  await session.run(feeds());
  process.stdout.write('first\n', () => process.exit(0));
} else if (options.mode === 'latency') {
  const warmEnd = performance.now() + options.warmupS * 1000;
  while (performance.now() < warmEnd) await session.run(feeds());
  const samples = [];
  const start = performance.now();
  const end = start + options.durationS * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    await session.run(feeds());
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  const pct = (p) => samples[Math.min(samples.length - 1, Math.ceil((p / 100) * samples.length) - 1)];
  const durationS = (performance.now() - start) / 1000;
  const result = {
    requests: samples.length,
    errors: {},
    durationS,
    rps: samples.length / durationS,
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    max: samples.at(-1),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
} else if (options.mode === 'throughput') {
  const warmEnd = performance.now() + options.warmupS * 1000;
  while (performance.now() < warmEnd) await session.run(feeds());
  process.stdout.write('ready\n');
  // Keep the threads warm while the other processes finish their warm-up: an idle wait here
  // would let this process's cores go to the others' warm-up, which is not what is measured.
  let go = false;
  createInterface({ input: process.stdin }).once('line', () => (go = true));
  while (!go) await session.run(feeds());
  let items = 0;
  const start = performance.now();
  const end = start + options.durationS * 1000;
  while (performance.now() < end) {
    await session.run(feeds());
    items += batch;
  }
  const durationS = (performance.now() - start) / 1000;
  process.stdout.write(`${JSON.stringify({ items, durationS })}\n`, () => process.exit(0));
} else {
  throw new Error(`unknown mode ${options.mode}`);
}
