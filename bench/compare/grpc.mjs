// KServe v2 over gRPC (raw_input_contents) against KServe v2 over HTTP (the binary extension), on
// one Kiln server at a time: the same models, inputs and setup as bench:compare's Kiln thread
// contestant, in alternating windows so that both see the same machine.
//
//   npm run build && node bench/compare/grpc.mjs
//
// Environment: KILN_GRPC_MODELS [cls,mnv2], KILN_GRPC_WINDOWS [6], KILN_GRPC_SETUPS [1:0:2x1,8:2:1x2]
// (batchSize:maxBatchDelay:procs×threads), KILN_GRPC_CLIENT [http2] (or grpc-js: see load.mjs),
// KILN_GRPC_REPORT (also write the table to this file).
//
// Both clients run on this machine's cores beside the server, so each one's own CPU per answer is
// reported too, and the transport floor (transport-floor.mjs): the c=1 p50 of a bare grpc-js server
// against a bare node:http one for the same request bytes, with no model and no Kiln.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadServer, prepare, startServer, stopServer } from './contestants.mjs';
import { clsModel, writeConvNet } from './models.mjs';
import { runLoad, start, waitForLine } from './procs.mjs';
import { median } from './report.mjs';

const env = process.env;
const root = fileURLToPath(new URL('../..', import.meta.url));
const proto = join(root, 'packages/server/proto/grpc_service.proto');
const windows = Number(env.KILN_GRPC_WINDOWS ?? 6);
const client = env.KILN_GRPC_CLIENT ?? 'http2';
const setups = (env.KILN_GRPC_SETUPS ?? '1:0:2x1,8:2:1x2').split(',').map((s) => {
  const [batchSize, maxBatchDelay, split] = s.split(':');
  const [procs, threads] = split.split('x').map(Number);
  return { batchSize: Number(batchSize), maxBatchDelay: Number(maxBatchDelay), procs, threads };
});

/** CPU seconds a process has used (user + system, its threads included). */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return (fields[11] + fields[12]) / 100;
}

const dir = mkdtempSync(join(tmpdir(), 'kiln-grpc-bench-'));
const rows = [];
try {
  for (const key of (env.KILN_GRPC_MODELS ?? 'cls,mnv2').split(',')) {
    const model = await prepare(key === 'cls' ? clsModel() : writeConvNet(dir), dir);
    for (const setup of setups) {
      const contestant = {
        id: 'kiln-thread',
        label: 'Kiln thread',
        kind: 'kiln',
        isolation: 'thread',
        env: { KILN_GRPC_ADDRESS: '127.0.0.1:0' },
      };
      const server = await startServer(root, dir, contestant, model, setup);
      // The gRPC API starts once the HTTP APIs listen: wait for its line.
      let address;
      for (const deadline = Date.now() + 10_000; address === undefined; await new Promise((r) => setTimeout(r, 50))) {
        address = /grpc API listening on ([\d.]+:\d+)/.exec(server.child.output())?.[1];
        if (address === undefined && Date.now() > deadline)
          throw new Error(`no gRPC address in the server's log:\n${server.child.output()}`);
      }
      const grpc = (options) =>
        runLoad({
          url: `grpc://${address}`,
          bodyFile: model.bodies.naive.file, // the raw float32 input: what raw_input_contents carries
          headers: {},
          grpc: { proto, model: model.key, input: model.inputName, shape: [1, ...model.dims], client },
          ...options,
        });
      const ratios = { rps: [], p50: [], cpu: [], client: [] };
      try {
        for (let w = 0; w < windows; w++) {
          const http = { rps: 0, p50: 0, cpuMs: 0, clientMs: 0 };
          const rpc = { rps: 0, p50: 0, cpuMs: 0, clientMs: 0 };
          const order = w % 2 === 0 ? ['http', 'grpc'] : ['grpc', 'http'];
          for (const which of order) {
            const load = (o) => (which === 'http' ? loadServer(server, o) : grpc(o));
            const out = which === 'http' ? http : rpc;
            // The server's own CPU per answer at c=32 (warm-up included in both counts): the load
            // generator's cost, which differs between the two clients, is left out of it.
            const cpu0 = cpuSeconds(server.child.pid);
            const busy = await load({ concurrency: 32, warmupS: 0.5, durationS: 2 });
            out.cpuMs = ((cpuSeconds(server.child.pid) - cpu0) * 1000) / (busy.requests * (2.5 / 2));
            const lone = await load({ concurrency: 1, warmupS: 0.5, durationS: 1 });
            for (const r of [busy, lone])
              if (Object.keys(r.errors).length > 0) throw new Error(`${which}: errors ${JSON.stringify(r.errors)}`);
            out.rps = busy.rps;
            out.p50 = lone.p50;
            out.clientMs = busy.clientCpuMsPerAnswer;
          }
          ratios.rps.push(rpc.rps / http.rps);
          ratios.p50.push(rpc.p50 / http.p50);
          ratios.cpu.push(rpc.cpuMs / http.cpuMs);
          ratios.client.push(rpc.clientMs / http.clientMs);
          process.stderr.write(
            `${key} ${JSON.stringify(setup)} window ${w + 1}: c=32 gRPC ${rpc.rps.toFixed(0)} / HTTP ${http.rps.toFixed(0)} req/s, c=1 p50 gRPC ${rpc.p50.toFixed(2)} / HTTP ${http.p50.toFixed(2)} ms, server CPU per answer gRPC ${rpc.cpuMs.toFixed(2)} / HTTP ${http.cpuMs.toFixed(2)} ms, client CPU per answer gRPC ${rpc.clientMs.toFixed(2)} / HTTP ${http.clientMs.toFixed(2)} ms\n`,
          );
        }
      } finally {
        await stopServer(server);
      }
      rows.push({ key, setup, ratios, floor: await transportFloor(model) });
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** The transport floor for this model's request bytes, in its own process (transport-floor.mjs). */
async function transportFloor(model) {
  const child = start(process.execPath, [
    join(root, 'bench/compare/transport-floor.mjs'),
    String(readFileSync(model.bodies.naive.file).length),
  ]);
  return JSON.parse(await waitForLine(child, /^\{/));
}

const range = (xs) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
const cell = (xs) => `${median(xs).toFixed(3)} (${range(xs)})`;
const table = [
  `${windows} alternating windows per row (c=32 for 2 s, then c=1 for 1 s, each after 0.5 s of warm-up), one Kiln server (threads) per row answering both.`,
  `gRPC: ModelInfer with raw_input_contents, encoded once (${client === 'grpc-js' ? "@grpc/grpc-js's Client" : "node:http2 writing gRPC's framing"}, one connection). HTTP: POST /v2/models/{m}/infer with the binary extension (node:http, keep-alive).`,
  'Above 1: gRPC serves more (throughput), waits longer (latency) or costs more CPU per answer (at c=32), the server or the load generator. Transport floor: c=1 p50 of a bare grpc-js unary call against a bare node:http POST of the same request bytes, no model, no Kiln (transport-floor.mjs).',
  '',
  '| model | batchSize, delay | procs × threads | c=32 req/s gRPC/HTTP (median, range) | c=1 p50 gRPC/HTTP (median, range) | server CPU per answer gRPC/HTTP | client CPU per answer gRPC/HTTP | transport floor c=1 p50 gRPC/HTTP |',
  '|---|---|---|---|---|---|---|---|',
  ...rows.map(
    ({ key, setup, ratios, floor }) =>
      `| ${key} | ${setup.batchSize}, ${setup.maxBatchDelay} ms | ${setup.procs}×${setup.threads} | ${cell(ratios.rps)} | ${cell(ratios.p50)} | ${cell(ratios.cpu)} | ${cell(ratios.client)} | ${(floor.grpcP50 / floor.httpP50).toFixed(2)} (${floor.grpcP50.toFixed(2)} / ${floor.httpP50.toFixed(2)} ms, ${(floor.requestBytes / 1024).toFixed(0)} KiB) |`,
  ),
].join('\n');
console.log(table);
if (env.KILN_GRPC_REPORT) writeFileSync(env.KILN_GRPC_REPORT, `# gRPC against HTTP v2\n\n${table}\n`);
