// The load generator. It runs in a process of its own so that its CPU time shows up as a separate
// process competing for the cores, the same way for every server, and so that the orchestrator's
// own work (timers, child pipes) never delays a request.
//
//   node bench/compare/load.mjs '<json options>'   → one line of JSON on stdout
//
// Options: url, bodyFile, headers, concurrency, and a stop condition: durationS (a fixed window
// after warmupS seconds whose answers are not counted) or requests (a fixed count, for the memory
// test). With `grpc` ({ proto, model, input, shape, client }), url is `grpc://127.0.0.1:port` and
// each request is a KServe v2 ModelInfer with bodyFile's bytes as raw_input_contents. Only 127.0.0.1
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

/**
 * A unary ModelInfer per call, on one HTTP/2 connection (the concurrent calls multiplexed on it).
 * The request is encoded once and the answers are not decoded (the first one is, and checked), as
 * the HTTP client sends one body and reads the answer's bytes: the generator's own protobuf cost
 * stays out of a comparison of servers. The client is `http2` (default): node:http2 writing gRPC's
 * framing itself (a 5-byte prefix, `grpc-status` in the trailers), a lean client as grpcio's C core
 * is; or `grpc-js`, @grpc/grpc-js's Client, which costs about 1 ms of CPU per call of 100 KB here.
 */
async function grpcSender({ proto, model, input, shape, client = 'http2' }) {
  const loader = await import('@grpc/proto-loader');
  const definition = loader.loadSync(proto, { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  const method = /** @type {import('@grpc/grpc-js').MethodDefinition<object, object>} */ (
    /** @type {any} */ (definition['inference.GRPCInferenceService']).ModelInfer
  );
  const encoded = method.requestSerialize({
    model_name: model,
    inputs: [{ name: input, datatype: 'FP32', shape }],
    raw_input_contents: [body],
  });
  let checked = false;
  /** @param {Buffer} answer @returns {number | string} */
  const check = (answer) => {
    if (checked) return 200;
    const decoded = /** @type {{ raw_output_contents?: Buffer[] }} */ (method.responseDeserialize(answer));
    if (!decoded.raw_output_contents?.[0]?.length) return 'grpc-no-raw-output';
    checked = true;
    return 200;
  };
  if (client === 'grpc-js') {
    const grpc = await import('@grpc/grpc-js');
    const channel = new grpc.Client(`${url.hostname}:${url.port}`, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 64 << 20,
      'grpc.max_send_message_length': 64 << 20,
    });
    /** @param {Buffer} bytes */
    const same = (bytes) => bytes;
    return () =>
      new Promise((resolve) => {
        channel.makeUnaryRequest(method.path, same, same, encoded, { deadline: Date.now() + timeoutMs }, (error, answer) =>
          resolve(error ? `grpc-${error.code}` : check(/** @type {Buffer} */ (answer))),
        );
      });
  }
  const http2 = await import('node:http2');
  // Node's default cap on a session's buffered memory (10 MB) is less than 32 requests of 600 KB in flight.
  const session = http2.connect(`http://${url.hostname}:${url.port}`, { maxSessionMemory: 1024 });
  session.on('error', () => {});
  // gRPC's message framing: not compressed (0), then the length, big-endian; built once.
  const framed = Buffer.alloc(5 + encoded.length);
  framed.writeUInt32BE(encoded.length, 1);
  encoded.copy(framed, 5);
  const headers = { ':method': 'POST', ':path': method.path, 'content-type': 'application/grpc', te: 'trailers' };
  return () =>
    new Promise((resolve) => {
      const stream = session.request(headers, { endStream: false });
      const chunks = [];
      let status;
      stream.setTimeout(timeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
      stream.on('response', (h) => (status = h['grpc-status'])); // a trailers-only answer (an error) has it here
      stream.on('trailers', (h) => (status = h['grpc-status']));
      stream.on('data', (chunk) => chunks.push(chunk));
      stream.on('error', (error) => resolve(`grpc-stream-error: ${error.message}`));
      stream.on('close', () => {
        if (status === undefined) return resolve('grpc-no-status');
        if (status !== '0') return resolve(`grpc-${status}`);
        if (checked) return resolve(200);
        resolve(check(Buffer.concat(chunks).subarray(5)));
      });
      stream.end(framed);
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

// This generator's own CPU time over the window: what a client pays per answer.
let cpuStart = process.cpuUsage();
let cpuWindow;

function startMeasuring() {
  phase = 'measure';
  windowStart = performance.now();
  cpuStart = process.cpuUsage();
  if (options.durationS)
    setTimeout(() => {
      windowEnd = performance.now();
      cpuWindow = process.cpuUsage(cpuStart);
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
    clientCpuMsPerAnswer: cpuPerAnswer(cpuWindow ?? process.cpuUsage(cpuStart), sorted.length),
    ...(why ? { aborted: why } : {}),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

/** CPU milliseconds (user + system) per answer counted, or null for none. */
function cpuPerAnswer({ user, system }, answers) {
  return answers > 0 ? (user + system) / 1000 / answers : null;
}
