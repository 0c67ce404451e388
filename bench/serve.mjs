// Measures `kiln serve`: time from start to ready with one small model, idle RSS of the server
// and its worker, and p50 latency at concurrency 1 next to in-process ONNX Runtime on the same
// model and input. Ratios are what to compare; absolute times depend on the machine.
//
//   npm run build && node bench/serve.mjs [requests=300]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';

const root = fileURLToPath(new URL('..', import.meta.url));
const kiln = join(root, 'packages/cli/bin/kiln.js');
const work = join(root, 'bench/out/serve');
const N = Number(process.argv[2] ?? 300);
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// The linear model of the tests: y = xW + b, [batch, 4] → [batch, 3].
const { onnx } = onnxProto;
const f32 = (v) => Buffer.from(new Float32Array(v).buffer);
const vi = (name, dims) => ({
  name,
  type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});
const W = [1, 0, 2, -1, 0.5, 3, 0, 1, -2, 2, 1, 0.25];
const model = onnx.ModelProto.create({
  irVersion: 8,
  opsetImport: [{ version: 17 }],
  graph: {
    name: 'linear',
    node: [
      { opType: 'MatMul', input: ['x', 'W'], output: ['xw'] },
      { opType: 'Add', input: ['xw', 'b'], output: ['y'] },
    ],
    initializer: [
      { name: 'W', dims: [4, 3], dataType: 1, rawData: f32(W) },
      { name: 'b', dims: [3], dataType: 1, rawData: f32([0.5, -1, 2]) },
    ],
    input: [vi('x', ['batch', 4])],
    output: [vi('y', ['batch', 3])],
  },
});
writeFileSync(join(work, 'linear.onnx'), onnx.ModelProto.encode(model).finish());
writeFileSync(join(work, 'config.yaml'), 'batchSize: 1\n');
execFileSync(
  process.execPath,
  [
    kiln,
    'archive',
    '--model-name',
    'linear',
    '-v',
    '1',
    '--serialized-file',
    'linear.onnx',
    '--handler',
    'tensor',
    '-c',
    'config.yaml',
    '-f',
    '-q',
  ],
  { cwd: work },
);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

async function serve(models) {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      kiln,
      'serve',
      '--models',
      ...models,
      '--inference-address',
      'http://127.0.0.1:0',
      '--management-address',
      'http://127.0.0.1:0',
      '--metrics-address',
      'http://127.0.0.1:0',
    ],
    { cwd: work },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  while (!/Kiln is ready/.test(out)) await new Promise((r) => setTimeout(r, 2));
  const readyMs = performance.now() - started;
  return { child, readyMs, address: /inference API listening on (http:\/\/[^\s"]+)/.exec(out)[1] };
}

async function stop(child) {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

// 1. Start to ready, 5 runs.
const readies = [];
for (let i = 0; i < 5; i++) {
  const s = await serve(['linear=linear.mar']);
  readies.push(s.readyMs);
  await stop(s.child);
}
console.log(`start → ready (one small model): median ${median(readies).toFixed(0)} ms over 5 runs`);

// 2. Idle RSS, and 3. latency at concurrency 1.
const s = await serve(['linear=linear.mar']);
await new Promise((r) => setTimeout(r, 500));
const workers = spawnSync('pgrep', ['-P', String(s.child.pid)], { encoding: 'utf8' })
  .stdout.trim()
  .split('\n')
  .filter(Boolean)
  .map(Number);
console.log(`idle RSS: server ${rss(s.child.pid).toFixed(0)} MB, worker ${workers.map((p) => rss(p).toFixed(0)).join(' + ')} MB`);

const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
const http = [];
for (let i = 0; i < N + 50; i++) {
  const t = performance.now();
  const res = await fetch(`${s.address}/predictions/linear`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  await res.text();
  if (i >= 50) http.push(performance.now() - t);
}
await stop(s.child);

const session = await ort.InferenceSession.create(join(work, 'linear.onnx'), { intraOpNumThreads: 1 });
const local = [];
for (let i = 0; i < N + 50; i++) {
  const t = performance.now();
  await session.run({ x: new ort.Tensor('float32', new Float32Array([1, 2, 3, 4]), [1, 4]) });
  if (i >= 50) local.push(performance.now() - t);
}
const p50http = median(http);
const p50local = median(local);
console.log(
  `p50 at concurrency 1 over ${N} requests: HTTP ${p50http.toFixed(3)} ms, in-process session.run ${p50local.toFixed(3)} ms (HTTP adds ${(p50http - p50local).toFixed(3)} ms)`,
);
rmSync(join(root, 'bench/out'), { recursive: true, force: true });
