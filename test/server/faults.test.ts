import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { ElemType, linearExpected } from '../support/onnx-models.js';
import { archiveModel, linearArchive, post, startKiln, type RunningKiln, until } from '../support/server.js';

const y = (row: number[]) => linearExpected(row).map(Math.fround);
const GOOD = [1, 2, 3, 4];

/** A later request succeeds: retried while the worker restarts, for at most 15 s. */
async function eventuallyServes(kiln: RunningKiln, model = 'linear') {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const answer = await post(`${kiln.inference}/predictions/${model}`, { row: GOOD });
    if (answer.status === 200 || Date.now() > deadline) return answer;
    await new Promise((r) => setTimeout(r, 100));
  }
}

type Described = { id: string; pid: number; threadId?: number; status: string }[];
async function workersOf(kiln: RunningKiln, model = 'linear'): Promise<Described> {
  const response = await fetch(`${kiln.management}/models/${model}`);
  return ((await response.json()) as { workers: Described }[])[0]!.workers;
}

/** The sum of a metric family's samples, from the metrics API. */
async function metricSum(kiln: RunningKiln, name: string): Promise<number> {
  const text = await (await fetch(`${kiln.metrics}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\d+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
}

/** A JSON POST that sends all but the last byte of its body now, and the rest on `finish()`. */
function partialPost(url: string, body: string): { finish: () => Promise<{ status: number; json: Record<string, unknown> }> } {
  const request = httpRequest(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  const answer = new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
    request.on('response', (response) => {
      let text = '';
      response.on('data', (chunk) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
    });
    request.on('error', reject);
  });
  request.write(body.slice(0, -1));
  return {
    finish: () => {
      request.end(body.slice(-1));
      return answer;
    },
  };
}

function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

// Every fault, on both transports: a worker thread and a worker process must survive the same things.
describe.each(['thread', 'process'] as const)('%s workers: the server survives handler faults', (isolation) => {
  const serve = (args: string[]) => startKiln([...args, '--isolation', isolation]);

  test('process.exit during inference: a 500 naming the model, the exit code and the last error; then a restart', async () => {
    const archive = linearArchive(tempDir(), 'exit-on-inference', 'batchSize: 1\n');
    const kiln = await serve(['--models', `linear=${archive}`]);
    const first = (await post(`${kiln.inference}/predictions/linear`, { row: GOOD })).json;
    const crash = await post(`${kiln.inference}/predictions/linear`, { row: [666, 0, 0, 0] });
    expect(crash.status).toBe(500);
    expect(crash.json).toMatchObject({ code: 500, type: 'InternalServerException', errorCode: 'KILN_ERR_WORKER_DIED' });
    const where = isolation === 'thread' ? `thread \\d+ of pid ${kiln.child.pid}` : 'pid \\d+';
    expect(String(crash.json.message)).toMatch(
      new RegExp(
        `the worker of model "linear" \\(${where}\\) died while running this request \\(exit code 3; last error: about to exit: row 666 is cursed\\)`,
      ),
    );
    // Sent while the worker restarts: it waits in the queue for the new worker instead of failing.
    const later = await post(`${kiln.inference}/predictions/linear`, { row: GOOD });
    expect(later.status).toBe(200);
    expect(later.json).toMatchObject({ y: y(GOOD) });
    expect(later.json.worker).not.toBe(first.worker); // a new worker
    // A thread's process.exit ends the thread only: the server is the same process.
    if (isolation === 'thread') expect(later.json.pid).toBe(kiln.child.pid);
    else expect(later.json.pid).not.toBe(first.pid);
    expect((await fetch(`${kiln.inference}/ping`)).status).toBe(200);
    expect(kiln.output()).toMatch(/restarting a worker of model "linear"/);
  });

  test('an uncaught error from a timer in the handler: a 500 with the error, then a restart', async () => {
    const archive = linearArchive(tempDir(), 'throw-later', 'batchSize: 1\n');
    const kiln = await serve(['--models', `linear=${archive}`]);
    const crash = await post(`${kiln.inference}/predictions/linear`, { row: [555, 0, 0, 0] });
    expect(crash.status).toBe(500);
    expect(crash.json).toMatchObject({ errorCode: 'KILN_ERR_WORKER_DIED' });
    expect(String(crash.json.message)).toContain('(exit code 1; last error: handler failed: a timer in the handler threw)');
    expect((await eventuallyServes(kiln)).json).toMatchObject({ y: y(GOOD) });
  });

  test('a handler that never returns: a timeout error after responseTimeout, then a fresh worker', async () => {
    const archive = linearArchive(tempDir(), 'hang-on-inference', 'batchSize: 1\nresponseTimeout: 1\n');
    const kiln = await serve(['--models', `linear=${archive}`]);
    const started = performance.now();
    const hung = await post(`${kiln.inference}/predictions/linear`, { row: [777, 0, 0, 0] });
    expect(hung.status).toBe(504);
    expect(hung.json).toMatchObject({ errorCode: 'KILN_ERR_RESPONSE_TIMEOUT' });
    expect(String(hung.json.message)).toContain('model "linear" did not answer within responseTimeout (1 s)');
    expect(performance.now() - started).toBeLessThan(5000);
    expect((await eventuallyServes(kiln)).json).toMatchObject({ y: y(GOOD) });
  });

  test.each([
    ['with ONNX Runtime running', 999],
    ['spinning in JavaScript', 998],
  ])('a worker busy past responseTimeout (%s) is stopped without harm to the server', async (_how, row) => {
    const archive = linearArchive(tempDir(), 'busy-on-inference', 'batchSize: 1\nresponseTimeout: 1\n');
    const kiln = await serve(['--models', `linear=${archive}`]);
    for (let i = 0; i < 3; i++) {
      const busy = await post(`${kiln.inference}/predictions/linear`, { row: [row, 0, 0, 0] });
      expect(busy.status).toBe(504);
      expect(busy.json).toMatchObject({ errorCode: 'KILN_ERR_RESPONSE_TIMEOUT' });
      expect((await eventuallyServes(kiln)).json).toMatchObject({ y: y(GOOD) });
    }
    expect(kiln.child.exitCode).toBeNull();
  });

  test('one ONNX Runtime run longer than responseTimeout: 504 on time, and the server outlives the run', async () => {
    // y = sum((x·xᵀ)^(2^24)): 24 chained 2048×2048 products, about 410 GFLOP for a 2048-row
    // input (seconds on one core), and nothing for a 1-row one. Every entry of x is 1/√32768, so
    // every product's entries stay 1/2048 (no denormals, whose cost varies from CPU to CPU).
    const chain = Array.from({ length: 24 }, (_, i) => ({ opType: 'MatMul', inputs: [`p${i}`, `p${i}`], outputs: [`p${i + 1}`] }));
    const archive = archiveModel(tempDir(), {
      name: 'gram',
      handler: 'tensor',
      config: 'batchSize: 1\nresponseTimeout: 1\n',
      model: {
        inputs: [{ name: 'x', elemType: ElemType.FLOAT, dims: ['n', 16] }],
        outputs: [{ name: 'y', elemType: ElemType.FLOAT, dims: [1, 1] }],
        nodes: [
          { opType: 'Transpose', inputs: ['x'], outputs: ['xt'] },
          { opType: 'MatMul', inputs: ['x', 'xt'], outputs: ['p0'] },
          ...chain,
          { opType: 'ReduceSum', inputs: ['p24', 'axes'], outputs: ['y'], attributes: { keepdims: 1 } },
        ],
        constants: [{ name: 'axes', dims: [2], values: [0, 1], int64: true }],
      },
    });
    const kiln = await serve(['--models', `gram=${archive}`]);
    const infer = (rows: number) =>
      post(`${kiln.inference}/v2/models/gram/infer`, {
        inputs: [
          { name: 'x', shape: [rows, 16], datatype: 'FP32', data: new Array(rows * 16).fill(rows === 1 ? 0 : 1 / Math.sqrt(32768)) },
        ],
      });
    const started = performance.now();
    const slow = await infer(2048);
    expect(slow.status).toBe(504);
    expect(slow.json).toMatchObject({ errorCode: 'KILN_ERR_RESPONSE_TIMEOUT' });
    expect(performance.now() - started).toBeLessThan(2500); // answered at the timeout, not when the run ends
    const deadline = Date.now() + 30_000;
    let later = await infer(1);
    while (later.status !== 200 && Date.now() < deadline) later = await infer(1);
    expect(later.json).toMatchObject({ outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1], data: [0] }] });
    expect(kiln.child.exitCode).toBeNull();
  });

  test('workerHeapLimitMb caps a worker: a handler that hoards memory ends its worker, not the server', async () => {
    const archive = linearArchive(tempDir(), 'hog-memory', 'batchSize: 1\nworkerHeapLimitMb: 64\n');
    const kiln = await serve(['--models', `linear=${archive}`]);
    const hog = await post(`${kiln.inference}/predictions/linear`, { row: [888, 0, 0, 0] });
    expect(hog.status).toBe(500);
    expect(hog.json).toMatchObject({ errorCode: 'KILN_ERR_WORKER_DIED' });
    if (isolation === 'thread') expect(String(hog.json.message)).toMatch(/out of memory/i);
    expect((await eventuallyServes(kiln)).json).toMatchObject({ y: y(GOOD) });
  });

  test('a handler that throws in initialize: that model fails, the server and the other models serve', async () => {
    const dir = tempDir();
    const broken = linearArchive(dir, 'throw-in-initialize', 'batchSize: 1\n', 'broken');
    const good = linearArchive(dir, 'linear', 'batchSize: 1\n');
    const kiln = await serve(['--models', `broken=${broken}`, `linear=${good}`]);
    expect(kiln.output()).toContain(
      'model broken 1.0 FAILED: it has no working worker: model "broken" version 1.0: initialize() failed: the label file is missing from this archive',
    );
    expect(kiln.output()).toContain('Kiln is ready: 1 model serving, 1 failed');

    const ping = await fetch(`${kiln.inference}/ping`);
    expect(ping.status).toBe(500);
    expect(await ping.json()).toMatchObject({ status: 'Unhealthy' });

    const v2Ready = await fetch(`${kiln.inference}/v2/models/broken/ready`);
    expect(v2Ready.status).toBe(503);
    expect(await v2Ready.json()).toEqual({ name: 'broken', ready: false });
    expect((await fetch(`${kiln.inference}/v2/health/ready`)).status).toBe(503);
    const refused = await post(`${kiln.inference}/predictions/broken`, { row: GOOD });
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ errorCode: 'KILN_ERR_MODEL_NOT_READY' });
    expect(String(refused.json.message)).toContain('the label file is missing from this archive');
    expect((await post(`${kiln.inference}/predictions/linear`, { row: GOOD })).json).toMatchObject({ y: y(GOOD) });
  });

  test('a full queue: 503 with Retry-After and a queue message, not a "no workers" one; the rest are answered', async () => {
    const archive = linearArchive(tempDir(), 'slow-inference', 'batchSize: 1\njobQueueSize: 2\n');
    const kiln = await serve(['--models', `linear=${archive}`]);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => post(`${kiln.inference}/predictions/linear`, { row: [i, 1, 1, 1] })),
    );
    const full = answers.filter((a) => a.status === 503);
    const served = answers.filter((a) => a.status === 200);
    expect(full.length).toBeGreaterThan(0);
    expect(served.length).toBeGreaterThanOrEqual(3); // one running and two queued at least
    expect(full.length + served.length).toBe(10);
    for (const answer of full) {
      expect(answer.headers.get('retry-after')).toBe('1');
      expect(answer.json).toMatchObject({ type: 'ServiceUnavailableException', errorCode: 'KILN_ERR_QUEUE_FULL' });
      expect(String(answer.json.message)).toContain('jobQueueSize 2');
      expect(String(answer.json.message)).not.toContain('no worker');
    }
    for (const answer of served) expect(answer.json.y).toEqual(y([answers.indexOf(answer), 1, 1, 1]));
    expect((await eventuallyServes(kiln)).status).toBe(200);
  });

  test('SIGTERM under load: every accepted request is answered, one still arriving gets 503 KILN_ERR_SHUTTING_DOWN, then the server exits 0', async () => {
    const archive = linearArchive(tempDir(), 'slow-inference', 'batchSize: 4\nmaxBatchDelay: 10\n');
    const kiln = await serve(['--models', `linear=${archive}`]);
    // A request whose body is still arriving when the drain begins.
    const late = partialPost(`${kiln.inference}/predictions/linear`, JSON.stringify({ row: GOOD }));
    const inflight = Array.from({ length: 12 }, (_, i) => post(`${kiln.inference}/predictions/linear`, { row: [i, 0, 0, 1] }));
    // All 12 accepted: 4 run at a time (200 ms a batch), so the rest wait in the queue or are done.
    await until(async () => (await metricSum(kiln, 'kiln_queue_size')) + (await metricSum(kiln, 'kiln_requests_total')) >= 8);
    const code = kiln.stop('SIGTERM');
    kiln.child.kill('SIGTERM'); // a second signal must not cut the drain short
    await until(() => kiln.output().includes('shutting down'));
    const refused = await late.finish();
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({
      code: 503,
      type: 'ServiceUnavailableException',
      errorCode: 'KILN_ERR_SHUTTING_DOWN',
      message: 'the server is shutting down and takes no new requests',
    });
    const answers = await Promise.all(inflight);
    expect(answers.map((a) => a.status)).toEqual(new Array(12).fill(200));
    answers.forEach((a, i) => expect(a.json.y).toEqual(y([i, 0, 0, 1])));
    expect(await code).toBe(0);
    await expect(fetch(`${kiln.inference}/ping`)).rejects.toThrow();
  });

  test('memory stays bounded: 3,000 requests of 108 KiB each leave the server and workers within 64 MB of where they were', async () => {
    // y = sum(x) over a 1×27648 FP32 input (the size of a 3×48×192 image), sent as v2 binary.
    const size = 27_648;
    const archive = archiveModel(tempDir(), {
      name: 'sum',
      handler: 'tensor',
      config: 'batchSize: 4\nmaxBatchDelay: 1\n',
      model: {
        inputs: [{ name: 'x', elemType: ElemType.FLOAT, dims: ['batch', size] }],
        outputs: [{ name: 'y', elemType: ElemType.FLOAT, dims: ['batch', 1] }],
        nodes: [{ opType: 'ReduceSum', inputs: ['x', 'axes'], outputs: ['y'], attributes: { keepdims: 1 } }],
        constants: [{ name: 'axes', dims: [1], values: [1], int64: true }],
      },
    });
    const kiln = await serve(['--models', `sum=${archive}`]);
    const header = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'x', shape: [1, size], datatype: 'FP32', parameters: { binary_data_size: size * 4 } }],
        outputs: [{ name: 'y', parameters: { binary_data: true } }],
      }),
    );
    // 16 different inputs, each with its sum worked out here.
    const inputs = Array.from({ length: 16 }, (_, seed) => {
      const x = Float32Array.from({ length: size }, (_, i) => ((i * 7 + seed) % 13) - 6);
      return { body: Buffer.concat([header, Buffer.from(x.buffer)]), sum: x.reduce((a, b) => a + b, 0) };
    });
    const send = async (n: number) => {
      const { body, sum } = inputs[n % inputs.length]!;
      const response = await fetch(`${kiln.inference}/v2/models/sum/infer`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
      });
      const bytes = Buffer.from(await response.arrayBuffer());
      const headerLength = Number(response.headers.get('inference-header-content-length'));
      return { status: response.status, got: bytes.readFloatLE(headerLength), want: sum };
    };
    const run = async (from: number, count: number, concurrency = 8) => {
      let next = from;
      const lanes = Array.from({ length: concurrency }, async () => {
        while (next < from + count) {
          const answer = await send(next++);
          expect(answer.status).toBe(200);
          expect(answer.got).toBeCloseTo(answer.want, 1);
        }
      });
      await Promise.all(lanes);
    };
    const pids = async () => [...new Set([kiln.child.pid!, ...(await workersOf(kiln, 'sum')).map((w) => w.pid)])];
    await run(0, 500);
    const before = new Map((await pids()).map((pid) => [pid, rssBytes(pid)]));
    await run(500, 2500);
    for (const [pid, rss] of before) {
      const growth = rssBytes(pid) - rss;
      // A leak of one input per request would add 2,500 × 108 KiB, about 270 MB.
      expect(growth, `RSS of pid ${pid} grew by ${(growth / 2 ** 20).toFixed(1)} MiB`).toBeLessThan(64 * 2 ** 20);
    }
  });
});
