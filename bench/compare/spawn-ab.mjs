// Spawn → first prediction of one `kiln serve` build on two archives of the same model, started
// alternately (the order flips each pair), so that both see the same machine: what an archive-side
// change (how it is compressed, what it holds) is worth at start.
//
//   node bench/compare/spawn-ab.mjs <a.mar> <b.mar> [starts, default 9]
//
// The archives serve a model through the `tensor` handler with one FP32 input; the request is a v2
// binary one of ones, sent every 5 ms from the spawn until a 200, as run.mjs does. Prints each
// median and the median and range of the per-pair differences a − b.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './procs.mjs';

const KILN = fileURLToPath(new URL('../../packages/cli/bin/kiln.js', import.meta.url));
const [a, b, startsArg] = process.argv.slice(2);
if (a === undefined || b === undefined) {
  console.error('usage: node bench/compare/spawn-ab.mjs <a.mar> <b.mar> [starts]');
  process.exit(2);
}
const starts = Number(startsArg ?? 9);

/** `kiln serve` on `mar` as model `m`, its inference API on `base`, the others on free ports or off. */
const serve = (mar, base) =>
  spawn(
    process.execPath,
    [KILN, 'serve', '--models', `m=${mar}`, '--inference-address', base]
      .concat(['--management-address', 'http://127.0.0.1:0', '--metrics-address', 'http://127.0.0.1:0'])
      .concat(['--grpc-address', 'off', '--ts-grpc-inference-address', 'off', '--ts-grpc-management-address', 'off']),
    { stdio: 'ignore', env: { ...process.env, KILN_PROBE_PROVIDERS: 'false' } },
  );

/** The v2 binary request for the model's first input, read from the server once it answers metadata. */
async function request(base) {
  const meta = await (await fetch(`${base}/v2/models/m`)).json();
  const input = meta.inputs[0];
  const shape = input.shape.map((d) => (d < 0 ? 1 : d));
  const count = shape.reduce((n, d) => n * d, 1);
  const header = Buffer.from(
    JSON.stringify({ inputs: [{ name: input.name, shape, datatype: 'FP32', parameters: { binary_data_size: count * 4 } }] }),
  );
  const body = Buffer.concat([header, Buffer.from(new Float32Array(count).fill(1).buffer)]);
  return { body, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } };
}

/** Milliseconds from the spawn to the first 200 answer. */
async function spawnToFirst(mar, prepared) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const started = performance.now();
  const child = serve(mar, base);
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`kiln serve ${mar} exited with ${child.exitCode}`);
      try {
        const answer = await fetch(`${base}/v2/models/m/infer`, { method: 'POST', ...prepared });
        await answer.arrayBuffer();
        if (answer.status === 200) return performance.now() - started;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    child.kill('SIGKILL');
    await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
  }
}

// One start to learn the request's shape, not counted.
const port = await freePort();
const probe = serve(a, `http://127.0.0.1:${port}`);
let prepared;
for (let i = 0; prepared === undefined && i < 600; i++) {
  prepared = await request(`http://127.0.0.1:${port}`).catch(() => undefined);
  if (prepared === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
}
probe.kill('SIGKILL');
if (prepared === undefined) throw new Error(`kiln serve ${a} never answered its metadata`);

const times = { a: [], b: [] };
for (let i = 0; i < starts; i++) {
  for (const which of i % 2 === 0 ? ['a', 'b'] : ['b', 'a']) times[which].push(await spawnToFirst(which === 'a' ? a : b, prepared));
}
const median = (values) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)];
const differences = times.a.map((t, i) => t - times.b[i]);
const ms = (n) => `${n.toFixed(0)} ms`;
console.log(`a ${a}: median ${ms(median(times.a))}`);
console.log(`b ${b}: median ${ms(median(times.b))}`);
console.log(
  `a − b per pair: median ${ms(median(differences))}, range ${ms(Math.min(...differences))} to ${ms(Math.max(...differences))} (${starts} pairs)`,
);
