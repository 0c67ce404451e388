// KServe v2 with a 1×3×224×224 FP32 input: JSON against the binary tensor extension. Prints the
// request size and p50 latency at concurrency 1 for each, next to in-process session.run on the
// same model, input and thread count.
//
//   npm run build && node bench/v2-binary.mjs [requests=100]
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';

const root = fileURLToPath(new URL('..', import.meta.url));
const kiln = join(root, 'packages/cli/bin/kiln.js');
const work = join(root, 'bench/out/v2');
const N = Number(process.argv[2] ?? 100);
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// An image model about as heavy as a ResNet-18 on 224×224 (~1.5 GMACs): five 3×3 convolutions,
// global pooling and a 1000-class head. What it computes does not matter; its cost does.
const { onnx } = onnxProto;
let seed = 1;
const random = (n, scale) => Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * scale);
const init = (name, dims, scale) => ({
  name,
  dims,
  dataType: 1,
  rawData: Buffer.from(
    random(
      dims.reduce((a, b) => a * b, 1),
      scale,
    ).buffer,
  ),
});
const vi = (name, dims) => ({
  name,
  type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});
const same = (x, w, out) => ({ opType: 'Conv', input: [x, w], output: [out], attribute: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }] });
const conv = (x, w, out) => ({
  opType: 'Conv',
  input: [x, w],
  output: [out],
  attribute: [
    { name: 'strides', type: 7, ints: [2, 2] },
    { name: 'pads', type: 7, ints: [1, 1, 1, 1] },
  ],
});
const model = onnx.ModelProto.create({
  irVersion: 8,
  opsetImport: [{ version: 17 }],
  graph: {
    name: 'convnet',
    node: [
      conv('image', 'w1', 'c1'),
      { opType: 'Relu', input: ['c1'], output: ['r1'] },
      conv('r1', 'w2', 'c2'),
      { opType: 'Relu', input: ['c2'], output: ['r2'] },
      conv('r2', 'w3', 'c3'),
      { opType: 'Relu', input: ['c3'], output: ['r3'] },
      same('r3', 'w4', 'c4'),
      { opType: 'Relu', input: ['c4'], output: ['r4'] },
      same('r4', 'w5', 'c5'),
      { opType: 'Relu', input: ['c5'], output: ['r5'] },
      { opType: 'GlobalAveragePool', input: ['r5'], output: ['pool'] },
      { opType: 'Flatten', input: ['pool'], output: ['flat'] },
      { opType: 'MatMul', input: ['flat', 'head'], output: ['logits'] },
    ],
    initializer: [
      init('w1', [64, 3, 3, 3], 0.5),
      init('w2', [128, 64, 3, 3], 0.05),
      init('w3', [256, 128, 3, 3], 0.03),
      init('w4', [256, 256, 3, 3], 0.02),
      init('w5', [256, 256, 3, 3], 0.02),
      init('head', [256, 1000], 0.1),
    ],
    input: [vi('image', ['batch', 3, 224, 224])],
    output: [vi('logits', ['batch', 1000])],
  },
});
writeFileSync(join(work, 'convnet.onnx'), onnx.ModelProto.encode(model).finish());
// KILN_BENCH_THREADS sets ONNX Runtime threads on both sides; default: the server's, cores ÷ workers.
const threads = Number(process.env.KILN_BENCH_THREADS ?? Math.max(1, cpus().length));
writeFileSync(join(work, 'model-config.yaml'), `intraOpNumThreads: ${threads}\n`);
execFileSync(
  process.execPath,
  [
    kiln,
    'archive',
    '--model-name',
    'convnet',
    '-v',
    '1',
    '--serialized-file',
    'convnet.onnx',
    '--handler',
    'tensor',
    '-c',
    'model-config.yaml',
    '-f',
    '-q',
  ],
  { cwd: work },
);

const pixels = random(3 * 224 * 224, 2);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const child = spawn(
  process.execPath,
  [
    kiln,
    'serve',
    '--models',
    'convnet=convnet.mar',
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
while (!/Kiln is ready/.test(out)) await new Promise((r) => setTimeout(r, 5));
const url = `${/inference API listening on (http:\/\/[^\s"]+)/.exec(out)[1]}/v2/models/convnet/infer`;

const jsonBody = Buffer.from(
  JSON.stringify({ inputs: [{ name: 'image', shape: [1, 3, 224, 224], datatype: 'FP32', data: Array.from(pixels) }] }),
);
const tensorBytes = Buffer.from(pixels.buffer);
const header = Buffer.from(
  JSON.stringify({
    inputs: [{ name: 'image', shape: [1, 3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: tensorBytes.length } }],
    outputs: [{ name: 'logits', parameters: { binary_data: true } }],
  }),
);
const binaryBody = Buffer.concat([header, tensorBytes]);

// node:http with keep-alive: the lightest client Node has (fetch adds about 1 ms per 600 KB request).
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function send(body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}
async function time(body, headers) {
  const samples = [];
  for (let i = 0; i < N + 10; i++) {
    const t = performance.now();
    await send(body, headers);
    if (i >= 10) samples.push(performance.now() - t);
  }
  return median(samples);
}
const binary = await time(binaryBody, {
  'content-type': 'application/octet-stream',
  'inference-header-content-length': String(header.length),
});
const json = await time(jsonBody, { 'content-type': 'application/json' });
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));

const session = await ort.InferenceSession.create(join(work, 'convnet.onnx'), {
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
});
const local = [];
for (let i = 0; i < N + 10; i++) {
  const t = performance.now();
  await session.run({ image: new ort.Tensor('float32', pixels, [1, 3, 224, 224]) });
  if (i >= 10) local.push(performance.now() - t);
}
const inProcess = median(local);
const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;
console.log(`1×3×224×224 FP32, ${N} requests each at concurrency 1, ${threads} ORT threads`);
console.log(`in-process session.run: p50 ${inProcess.toFixed(2)} ms`);
console.log(`v2 binary: request ${kb(binaryBody.length)}, p50 ${binary.toFixed(2)} ms (${(binary / inProcess).toFixed(2)}× in-process)`);
console.log(`v2 JSON:   request ${kb(jsonBody.length)}, p50 ${json.toFixed(2)} ms (${(json / inProcess).toFixed(2)}× in-process)`);
if (!process.env.KEEP) rmSync(join(root, 'bench/out'), { recursive: true, force: true });
