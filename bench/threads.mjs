// ONNX Runtime thread settings, measured in-process on both bench:compare models: intra-op threads
// 1 and 2, spinning on and off, and inter-op threads (the parallel execution mode, which runs
// independent branches of the graph side by side). For each: p50 latency of a batch-1 run, the CPU time one run costs
// (all threads together), and batched throughput (items/s at batch 16). Spinning threads burn CPU
// that a server's HTTP thread needs, so CPU per run matters as much as latency.
//
//   npm run build && node bench/threads.mjs [seconds per setting = 3]
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { clsModel, inputFor, writeConvNet } from './compare/models.mjs';

const seconds = Number(process.argv[2] ?? 3);
const work = fileURLToPath(new URL('./out/threads', import.meta.url));
mkdirSync(work, { recursive: true });
const models = [clsModel(), writeConvNet(work)];

async function measure(model, { threads, spinning, interOp }, batch) {
  const session = await ort.InferenceSession.create(model.path, {
    intraOpNumThreads: threads,
    interOpNumThreads: interOp,
    executionMode: interOp > 1 ? 'parallel' : 'sequential',
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: spinning ? '1' : '0' } } },
  });
  const one = inputFor(model);
  const data = new Float32Array(one.length * batch);
  for (let i = 0; i < batch; i++) data.set(one, i * one.length);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [batch, ...model.dims]) };
  for (let i = 0; i < 20; i++) await session.run(feeds);
  const times = [];
  const cpu = process.cpuUsage();
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t);
  }
  const used = process.cpuUsage(cpu);
  await session.release();
  times.sort((a, b) => a - b);
  const wall = times.reduce((a, b) => a + b, 0);
  return {
    p50: times[Math.floor(times.length / 2)],
    cpuPerRun: (used.user + used.system) / 1000 / times.length,
    itemsPerS: (times.length * batch) / (wall / 1000),
  };
}

console.log(`ONNX Runtime threads, in-process, ${seconds} s per setting (${new Date().toISOString()})`);
console.log(
  '| model | intra-op threads | spinning | inter-op threads | batch-1 p50 ms | CPU ms per batch-1 run | batch-16 items/s | CPU ms per batch-16 run |',
);
console.log('|---|---|---|---|---|---|---|---|');
const settings = [
  { threads: 1, spinning: true, interOp: 1 },
  { threads: 2, spinning: true, interOp: 1 },
  { threads: 2, spinning: false, interOp: 1 },
  { threads: 1, spinning: true, interOp: 2 },
];
for (const model of models) {
  for (const setting of settings) {
    const single = await measure(model, setting, 1);
    const batched = await measure(model, setting, 16);
    const spinning = setting.threads === 1 ? 'n/a' : setting.spinning ? 'on' : 'off';
    const interOp = setting.interOp === 1 ? '1 (sequential)' : `${setting.interOp} (parallel)`;
    console.log(
      `| ${model.key} | ${setting.threads} | ${spinning} | ${interOp} | ${single.p50.toFixed(2)} | ${single.cpuPerRun.toFixed(2)} | ${batched.itemsPerS.toFixed(0)} | ${batched.cpuPerRun.toFixed(1)} |`,
    );
  }
}
