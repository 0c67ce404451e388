import { describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { linearExpected } from '../support/onnx-models.js';
import { linearArchive, post, startKiln, type RunningKiln } from '../support/server.js';

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

describe('the server survives handler faults', () => {
  test('process.exit during inference: a 500 naming the model, the exit code and the last error; then a restart', async () => {
    const archive = linearArchive(tempDir(), 'exit-on-inference', 'batchSize: 1\n');
    const kiln = await startKiln(['--models', `linear=${archive}`]);
    const first = (await post(`${kiln.inference}/predictions/linear`, { row: GOOD })).json;
    const crash = await post(`${kiln.inference}/predictions/linear`, { row: [666, 0, 0, 0] });
    expect(crash.status).toBe(500);
    expect(crash.json).toMatchObject({ code: 500, type: 'InternalServerException', errorCode: 'KILN_ERR_WORKER_DIED' });
    expect(String(crash.json.message)).toMatch(/the worker of model "linear" \(pid \d+\) died while running this request \(exit code 3; last error: about to exit: row 666 is cursed\)/);
    // Sent while the worker restarts: it waits in the queue for the new worker instead of failing.
    const later = await post(`${kiln.inference}/predictions/linear`, { row: GOOD });
    expect(later.status).toBe(200);
    expect(later.json).toMatchObject({ y: y(GOOD) });
    expect(later.json.pid).not.toBe(first.pid); // a new worker process
    expect((await fetch(`${kiln.inference}/ping`)).status).toBe(200);
    expect(kiln.output()).toMatch(/restarting a worker of model "linear"/);
  });

  test('a handler that never returns: a timeout error after responseTimeout, then a fresh worker', async () => {
    const archive = linearArchive(tempDir(), 'hang-on-inference', 'batchSize: 1\nresponseTimeout: 1\n');
    const kiln = await startKiln(['--models', `linear=${archive}`]);
    const started = performance.now();
    const hung = await post(`${kiln.inference}/predictions/linear`, { row: [777, 0, 0, 0] });
    expect(hung.status).toBe(504);
    expect(hung.json).toMatchObject({ errorCode: 'KILN_ERR_RESPONSE_TIMEOUT' });
    expect(String(hung.json.message)).toContain('model "linear" did not answer within responseTimeout (1 s)');
    expect(performance.now() - started).toBeLessThan(5000);
    expect((await eventuallyServes(kiln)).json).toMatchObject({ y: y(GOOD) });
  });

  test('a handler that throws in initialize: that model fails, the server and the other models serve', async () => {
    const dir = tempDir();
    const broken = linearArchive(dir, 'throw-in-initialize', 'batchSize: 1\n', 'broken');
    const good = linearArchive(dir, 'linear', 'batchSize: 1\n');
    const kiln = await startKiln(['--models', `broken=${broken}`, `linear=${good}`]);
    expect(kiln.output()).toContain('model broken 1.0 FAILED: it has no working worker: model "broken" version 1.0: initialize() failed: the label file is missing from this archive');
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
    const kiln = await startKiln(['--models', `linear=${archive}`]);
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => post(`${kiln.inference}/predictions/linear`, { row: [i, 1, 1, 1] })));
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

  test('SIGTERM under load: every accepted request is answered, then the server exits 0', async () => {
    const archive = linearArchive(tempDir(), 'slow-inference', 'batchSize: 4\nmaxBatchDelay: 10\n');
    const kiln = await startKiln(['--models', `linear=${archive}`]);
    const inflight = Array.from({ length: 12 }, (_, i) => post(`${kiln.inference}/predictions/linear`, { row: [i, 0, 0, 1] }));
    await new Promise((r) => setTimeout(r, 150)); // all 12 accepted; the first batch is running
    const code = kiln.stop('SIGTERM');
    kiln.child.kill('SIGTERM'); // a second signal must not cut the drain short
    const answers = await Promise.all(inflight);
    expect(answers.map((a) => a.status)).toEqual(new Array(12).fill(200));
    answers.forEach((a, i) => expect(a.json.y).toEqual(y([i, 0, 0, 1])));
    expect(await code).toBe(0);
    expect(kiln.output()).toContain('shutting down');
    await expect(fetch(`${kiln.inference}/ping`)).rejects.toThrow();
  });
});
