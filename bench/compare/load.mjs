// The load generator. It runs in a process of its own so that its CPU time shows up as a separate
// process competing for the cores, the same way for every server, and so that the orchestrator's
// own work (timers, child pipes) never delays a request.
//
//   node bench/compare/load.mjs '<json options>'   → one line of JSON on stdout
//
// Options: url, bodyFile, headers, concurrency, and a stop condition: durationS (a fixed window
// after warmupS seconds whose answers are not counted) or requests (a fixed count, for the memory
// test). With `grpc` ({ proto, model, input, shape }), url is `grpc://127.0.0.1:port` and each
// request is a KServe v2 ModelInfer with bodyFile's bytes as raw_input_contents. Only 127.0.0.1
// is accepted: this tool never loads anything else.
import { readFileSync } from 'node:fs';
import http from 'node:http';

/**
 * @typedef {object} LoadOptions
 * @property {string} url
 * @property {string} bodyFile
 * @property {Record<string, string>} headers
 * @property {number} concurrency
 * @property {number} [durationS]
 * @property {number} [requests]
 * @property {number} [warmupS]
 * @property {number} [timeoutMs]
 */

/** @type {LoadOptions} */
const options = JSON.parse(process.argv[2]);
const url = new URL(options.url);
if (url.hostname !== '127.0.0.1') throw new Error(`load.mjs only talks to 127.0.0.1, not ${url.hostname}`);
const body = readFileSync(options.bodyFile);
const headers = { ...options.headers, 'content-length': String(body.length) };
const timeoutMs = options.timeoutMs ?? 30_000;
// One socket per loop, kept alive: what a real client pool does, and no connect cost per request.
const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });

// A hard stop, in case a server stops answering altogether: the orchestrator must always get an answer.
const budgetS = (options.warmupS ?? 0) + (options.durationS ?? 0) + (options.requests ? 600 : 0) + 30;
setTimeout(() => finish('deadline'), budgetS * 1000).unref();

const grpcSend = options.grpc ? await grpcSender(options.grpc) : undefined;

/** A unary ModelInfer per call, on one channel (HTTP/2 multiplexes the concurrent calls). */
async function grpcSender({ proto, model, input, shape }) {
  const grpc = await import('@grpc/grpc-js');
  const loader = await import('@grpc/proto-loader');
  const definition = loader.loadSync(proto, { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  const { inference } = /** @type {any} */ (grpc.loadPackageDefinition(definition));
  const client = new inference.GRPCInferenceService(`${url.hostname}:${url.port}`, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 << 20,
    'grpc.max_send_message_length': 64 << 20,
  });
  const message = { model_name: model, inputs: [{ name: input, datatype: 'FP32', shape }], raw_input_contents: [body] };
  return () =>
    new Promise((resolve) => {
      client.ModelInfer(message, { deadline: Date.now() + timeoutMs }, (error) => resolve(error ? `grpc-${error.code}` : 200));
    });
}

/** @returns {Promise<number | string>} the status code, or an error name for a request that failed */
function send() {
  if (grpcSend) return grpcSend();
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve('response-error'));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', (error) => resolve(error.message === 'timeout' ? 'timeout' : (/** @type {any} */ (error).code ?? 'error')));
    req.end(body);
  });
}

const latencies = [];
/** @type {Record<string, number>} */
const errors = {};
let phase = options.warmupS ? 'warmup' : 'measure';
let issued = 0;
let finished = false;
let windowStart = performance.now();
let windowEnd = 0;

function startMeasuring() {
  phase = 'measure';
  windowStart = performance.now();
  if (options.durationS)
    setTimeout(() => {
      windowEnd = performance.now();
      phase = 'done';
    }, options.durationS * 1000);
}

async function loop() {
  for (;;) {
    if (phase === 'done' || (options.requests && issued >= options.requests)) return;
    issued++;
    const t = performance.now();
    const status = await send();
    const ms = performance.now() - t;
    // Closed-loop throughput, as wrk counts it: every answer that arrives inside the window
    // counts, whenever its request left. Counting only requests that also left inside it would
    // report zero for a server whose latency at c=32 is longer than the window.
    if (phase === 'warmup') continue;
    if (phase === 'done') return;
    if (status === 200) latencies.push(ms);
    else {
      errors[status] = (errors[status] ?? 0) + 1;
      // A refused connection fails at once; do not spin on it.
      if (typeof status === 'string') await new Promise((r) => setTimeout(r, 10));
    }
  }
}

if (options.warmupS) setTimeout(startMeasuring, options.warmupS * 1000);
else startMeasuring();
await Promise.all(Array.from({ length: options.concurrency }, loop));
finish();

function finish(why) {
  if (finished) return;
  finished = true;
  const end = windowEnd || performance.now();
  const sorted = latencies.sort((a, b) => a - b);
  const pct = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : null);
  const durationS = (end - windowStart) / 1000;
  const result = {
    requests: sorted.length,
    errors,
    durationS,
    rps: sorted.length / durationS,
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    max: sorted.at(-1) ?? null,
    ...(why ? { aborted: why } : {}),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}
