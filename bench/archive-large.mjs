// Measures `kiln archive --archive-format zip-store` on a model with a 1 GiB external-data file,
// next to `zip -0` on the same files: wall time (median of N alternating runs) and peak RSS.
//
//   node bench/archive-large.mjs [sizeMiB=1024] [runs=3]
//
// Needs /usr/bin/time and zip. Writes under bench/out/ (ignored by git) and removes it after.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const root = fileURLToPath(new URL('..', import.meta.url));
const work = join(root, 'bench/out/archive-large');
const sizeMiB = Number(process.argv[2] ?? 1024);
const runs = Number(process.argv[3] ?? 3);

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// A linear model whose weights live in `weights.bin`; the file is padded with random bytes
// (incompressible, like real weights) to the requested size.
const W = new Float32Array([1, 0, 2, -1, 0.5, 3, 0, 1, -2, 2, 1, 0.25]);
const external = (name, dims, offset, length) =>
  onnx.TensorProto.create({
    name,
    dims,
    dataType: 1,
    dataLocation: 1,
    externalData: [
      { key: 'location', value: 'weights.bin' },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(length) },
    ],
  });
const vi = (name, dims) => ({
  name,
  type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});
const model = onnx.ModelProto.create({
  irVersion: 8,
  opsetImport: [{ version: 17 }],
  graph: {
    name: 'bench',
    node: [{ opType: 'MatMul', input: ['x', 'W'], output: ['y'] }],
    initializer: [external('W', [4, 3], 0, 48)],
    input: [vi('x', ['batch', 4])],
    output: [vi('y', ['batch', 3])],
  },
});
execFileSync('sh', ['-c', `cat > ${join(work, 'model.onnx')}`], { input: onnx.ModelProto.encode(model).finish() });
const fd = openSync(join(work, 'weights.bin'), 'w');
writeSync(fd, Buffer.from(W.buffer));
const chunk = Buffer.alloc(16 << 20);
for (let written = 48; written < sizeMiB << 20; written += chunk.length) {
  randomFillSync(chunk);
  writeSync(fd, chunk, 0, Math.min(chunk.length, (sizeMiB << 20) - written));
}
closeSync(fd);

function timed(cmd, args) {
  const result = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { cwd: work, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${cmd} failed: ${result.stderr}`);
  const [seconds, kb] = result.stderr.trim().split('\n').at(-1).split(' ').map(Number);
  return { seconds, rssMB: kb / 1024 };
}

const kiln = join(root, 'packages/cli/bin/kiln.js');
const kilnRuns = [];
const zipRuns = [];
for (let i = 0; i < runs; i++) {
  rmSync(join(work, 'bench.mar'), { force: true });
  kilnRuns.push(
    timed(process.execPath, [
      kiln,
      'archive',
      '--model-name',
      'bench',
      '-v',
      '1',
      '--serialized-file',
      'model.onnx',
      '--handler',
      'tensor',
      '--archive-format',
      'zip-store',
      '-q',
    ]),
  );
  rmSync(join(work, 'bench.zip'), { force: true });
  zipRuns.push(timed('zip', ['-0', '-q', 'bench.zip', 'model.onnx', 'weights.bin']));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const kilnS = median(kilnRuns.map((r) => r.seconds));
const zipS = median(zipRuns.map((r) => r.seconds));
console.log(`weights: ${sizeMiB} MiB, ${runs} runs each, alternating`);
console.log(`kiln archive zip-store: median ${kilnS.toFixed(2)} s, peak RSS ${Math.max(...kilnRuns.map((r) => r.rssMB)).toFixed(0)} MB`);
console.log(`zip -0:                 median ${zipS.toFixed(2)} s, peak RSS ${Math.max(...zipRuns.map((r) => r.rssMB)).toFixed(0)} MB`);
console.log(`ratio kiln / zip -0:    ${(kilnS / zipS).toFixed(2)}`);
rmSync(join(root, 'bench/out'), { recursive: true, force: true });
