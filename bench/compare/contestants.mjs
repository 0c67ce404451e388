// The four contestants and how each is started and measured. A "setup" is what a contestant runs
// with: batchSize and maxBatchDelay (Kiln), batch (in-process), and the thread split: `procs`
// processes or workers × `threads` intra-op threads.
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { archiveWithConfig } from './archive.mjs';
import { inputFor } from './models.mjs';
import { freePort, runLoad, start, stop, waitForLine } from './procs.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * @typedef {{ id: string, label: string, kind: 'inproc' | 'naive' | 'kiln', isolation?: 'thread' | 'process', env?: Record<string, string> }} Contestant
 * @typedef {{ batchSize: number, maxBatchDelay: number | 'auto', procs: number, threads: number }} Setup
 * @typedef {import('./models.mjs').BenchModel & { inputName: string, outputName: string, input: Float32Array, reference: Float32Array, bodies: Record<'naive' | 'kiln', { file: string, headers: Record<string, string> }> }} Model
 */

/** @param {boolean} noIsolationKey @returns {Contestant[]} */
export function contestants(noIsolationKey) {
  const kiln = noIsolationKey
    ? [{ id: 'kiln', label: 'Kiln (current)', kind: 'kiln' }]
    : [
        { id: 'kiln-thread', label: 'Kiln thread', kind: 'kiln', isolation: 'thread' },
        { id: 'kiln-process', label: 'Kiln process', kind: 'kiln', isolation: 'process' },
      ];
  return [{ id: 'inproc', label: 'in-process', kind: 'inproc' }, { id: 'naive', label: 'naive server', kind: 'naive' }, ...kiln];
}

/**
 * Reads the model's input and output names from a session, makes its input, computes the
 * reference output (in-process session.run, batch 1) that every server's answer is checked
 * against, and writes the request bodies: raw float32 for the naive server, v2 binary for Kiln.
 * @param {import('./models.mjs').BenchModel} base
 * @returns {Promise<Model>}
 */
export async function prepare(base, dir) {
  const session = await ort.InferenceSession.create(base.path, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const model = { ...base, inputName: session.inputNames[0], outputName: session.outputNames[0], input: inputFor(base) };
  const results = await session.run({ [model.inputName]: new ort.Tensor('float32', model.input, [1, ...model.dims]) });
  model.reference = /** @type {Float32Array} */ (results[model.outputName].data);
  await session.release();

  const raw = Buffer.from(model.input.buffer, model.input.byteOffset, model.input.byteLength);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: model.inputName, shape: [1, ...model.dims], datatype: 'FP32', parameters: { binary_data_size: raw.length } }],
      outputs: [{ name: model.outputName, parameters: { binary_data: true } }],
    }),
  );
  writeFileSync(join(dir, `${model.key}.raw`), raw);
  writeFileSync(join(dir, `${model.key}.v2`), Buffer.concat([header, raw]));
  model.bodies = {
    naive: { file: join(dir, `${model.key}.raw`), headers: { 'content-type': 'application/octet-stream' } },
    kiln: {
      file: join(dir, `${model.key}.v2`),
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    },
  };
  return /** @type {Model} */ (model);
}

const archives = new Map();
/** Archives the model with a model-config.yaml for this setup; one archive per distinct config. */
function archive(kilnRoot, dir, contestant, model, setup) {
  // No intraOpNumThreads when the setup leaves threads out: Kiln then chooses.
  const lines = [
    `batchSize: ${setup.batchSize}`,
    `minWorkers: ${setup.procs}`,
    ...(setup.threads === undefined ? [] : [`intraOpNumThreads: ${setup.threads}`]),
  ];
  if (setup.batchSize > 1) lines.push(`maxBatchDelay: ${setup.maxBatchDelay}`);
  if (contestant.isolation) lines.push(`isolation: ${contestant.isolation}`);
  const config = `${lines.join('\n')}\n`;
  const key = `${kilnRoot}|${model.key}|${config}`; // two builds may archive differently
  if (archives.has(key)) return archives.get(key);
  const mar = archiveWithConfig(kilnRoot, model, config, join(dir, `mar-${archives.size}`));
  archives.set(key, mar);
  return mar;
}

/** One POST with a fresh connection; resolves {status, headers, body} or {error}. */
function post(url, body, headers) {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { ...headers, 'content-length': body.length } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', (error) => resolve({ error }));
    req.end(body);
  });
}

/** The output floats of a 200 answer, from raw bytes (naive) or a v2 binary answer (Kiln). */
function outputOf(kind, res) {
  if (kind === 'naive') return new Float32Array(new Uint8Array(res.body).buffer);
  const headerLength = Number(res.headers['inference-header-content-length']);
  if (!Number.isInteger(headerLength)) throw new Error(`no inference-header-content-length in the answer: ${res.body.subarray(0, 300)}`);
  const header = JSON.parse(res.body.subarray(0, headerLength).toString());
  const size = header.outputs?.[0]?.parameters?.binary_data_size;
  return new Float32Array(new Uint8Array(res.body.subarray(headerLength, headerLength + size)).buffer);
}

/** Throws unless the answer carries the same outputs as in-process session.run, within 1e-4. */
function check(label, kind, res, model) {
  const got = outputOf(kind, res);
  if (got.length !== model.reference.length)
    throw new Error(`${label} answered ${got.length} floats, in-process gives ${model.reference.length}`);
  let worst = 0;
  for (let i = 0; i < got.length; i++)
    worst = Math.max(worst, Math.abs(got[i] - model.reference[i]) || (Number.isNaN(got[i]) ? Infinity : 0));
  if (!(worst <= 1e-4)) throw new Error(`${label} answers differ from in-process session.run by up to ${worst} (> 1e-4)`);
}

/**
 * Starts a server contestant and times spawn → first 200, polling with the real request every
 * ~5 ms (refused connections and 503s while loading are retried). The first answer's outputs
 * are checked, so a server that answers fast but wrong never gets timed.
 */
export async function startServer(kilnRoot, dir, contestant, model, setup) {
  const port = await freePort();
  let child;
  const body = contestant.kind === 'naive' ? model.bodies.naive : model.bodies.kiln;
  const payload = readFileSync(body.file);
  let url;
  let t0;
  if (contestant.kind === 'naive') {
    url = `http://127.0.0.1:${port}/infer`;
    t0 = performance.now();
    child = start(process.execPath, [
      join(here, 'naive-server.mjs'),
      model.path,
      String(port),
      String(setup.threads),
      model.dims.join(','),
    ]);
  } else {
    const mar = archive(kilnRoot, dir, contestant, model, setup);
    url = `http://127.0.0.1:${port}/v2/models/${model.key}/infer`;
    t0 = performance.now();
    child = start(
      process.execPath,
      [
        // KILN_BENCH_NODE_ARGS: node's own flags for the Kiln server (--cpu-prof --cpu-prof-dir=...).
        ...(process.env.KILN_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
        join(kilnRoot, 'packages/cli/bin/kiln.js'),
        'serve',
        '--models',
        `${model.key}=${mar}`,
        '--inference-address',
        `http://127.0.0.1:${port}`,
        '--management-address',
        'http://127.0.0.1:0',
        '--metrics-address',
        'http://127.0.0.1:0',
      ],
      // The gRPC APIs on free ports: servers side by side (run.mjs's paired windows, ab.mjs) must not
      // all ask for 8085, 7070 and 7071.
      {
        cwd: dir,
        env: {
          ...process.env,
          KILN_GRPC_ADDRESS: '127.0.0.1:0',
          KILN_TS_GRPC_INFERENCE_ADDRESS: '127.0.0.1:0',
          KILN_TS_GRPC_MANAGEMENT_ADDRESS: '127.0.0.1:0',
          // The provider probe (a child process of about 0.4 s of CPU, once, after the first answer)
          // would land in the first measured window: the windows measure the steady state.
          KILN_PROBE_PROVIDERS: 'false',
          ...contestant.env,
        },
      },
    );
  }
  const server = { child, url, body, spawnMs: 0 };
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`${contestant.label} exited while starting:\n${child.output()}`);
      if (performance.now() - t0 > 120_000) throw new Error(`${contestant.label} gave no 200 within 120 s:\n${child.output()}`);
      const res = await post(url, payload, body.headers);
      if (res.status === 200) {
        server.spawnMs = performance.now() - t0;
        check(contestant.label, contestant.kind, res, model);
        return server;
      }
      // While it loads, Kiln answers 503, or 404 until the model is registered; any other 4xx
      // means the request is wrong, and waiting will not help.
      const loading = res.status === 503 || (res.status === 404 && contestant.kind === 'kiln');
      if (res.status !== undefined && !loading && res.status < 500)
        throw new Error(`${contestant.label} answered ${res.status}: ${res.body.subarray(0, 400)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  } catch (error) {
    await stop(child);
    throw error;
  }
}

export const stopServer = (server) => stop(server.child);

/** c=1 latency or c=N throughput against a started server, from load.mjs in its own process. */
export function loadServer(server, { concurrency, warmupS, durationS }) {
  return runLoad({ url: server.url, bodyFile: server.body.file, headers: server.body.headers, concurrency, warmupS, durationS });
}

const inproc = (model, options) =>
  start(process.execPath, [join(here, 'inproc.mjs'), JSON.stringify({ model: model.path, dims: model.dims, ...options })]);

/** In-process spawn → first session.run done. */
export async function inprocSpawnMs(model, threads) {
  const t0 = performance.now();
  const child = inproc(model, { mode: 'spawn', threads });
  await waitForLine(child, /^first$/);
  const ms = performance.now() - t0;
  await child.exited;
  return ms;
}

/** In-process sequential batch-1 latency, in load.mjs's JSON shape. */
export async function inprocLatency(model, threads, { warmupS, durationS }) {
  const child = inproc(model, { mode: 'latency', threads, warmupS, durationS });
  const line = await waitForLine(child, /^\{/);
  await child.exited;
  return JSON.parse(line);
}

/** In-process throughput: `procs` processes × `threads` threads running batches of `batch`, all
 *  measuring the same window; items/s summed. */
export async function inprocThroughput(model, setup, { warmupS, durationS }) {
  const children = Array.from({ length: setup.procs }, () =>
    inproc(model, { mode: 'throughput', threads: setup.threads, batch: setup.batchSize, warmupS, durationS }),
  );
  try {
    await Promise.all(children.map((c) => waitForLine(c, /^ready$/)));
    const results = children.map((c) => waitForLine(c, /^\{/));
    for (const c of children) c.stdin.write('go\n');
    const parsed = (await Promise.all(results)).map((line) => JSON.parse(line));
    const rps = parsed.reduce((sum, r) => sum + r.items / r.durationS, 0);
    return { requests: parsed.reduce((s, r) => s + r.items, 0), errors: {}, durationS: parsed[0].durationS, rps };
  } finally {
    await Promise.all(children.map((c) => stop(c)));
  }
}
