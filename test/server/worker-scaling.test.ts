import { describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { linearExpected } from '../support/onnx-models.js';
import { linearArchive, post, startKiln, until } from '../support/server.js';

const y = (row: number[]) => linearExpected(row).map(Math.fround);

interface Described {
  minWorkers: number;
  maxWorkers: number;
  status: string;
  workers: { id: string; status: string }[];
}

async function describeModel(management: string, name: string): Promise<Described> {
  const response = await fetch(`${management}/models/${name}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as Described[])[0]!;
}

async function put(url: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'PUT' });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe('workers on demand and autoscaling', () => {
  test('minWorkers 0: no worker until a request, which waits for one; idle workers stop again', async () => {
    const dir = tempDir();
    linearArchive(dir, 'linear', 'minWorkers: 0\nscaleDownAfter: 1\n', 'lazy');
    const kiln = await startKiln(['--model-store', 'store', '--models', 'lazy=lazy.mar'], { cwd: dir });
    const before = await describeModel(kiln.management, 'lazy');
    expect(before).toMatchObject({ minWorkers: 0, maxWorkers: 1, status: 'ready', workers: [] });
    expect((await fetch(`${kiln.inference}/ping`)).status).toBe(200);

    // The first request starts the worker and is answered by it.
    const first = await post(`${kiln.inference}/predictions/lazy`, { row: [1, 2, 3, 4] });
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ y: y([1, 2, 3, 4]) });
    expect((await describeModel(kiln.management, 'lazy')).workers).toHaveLength(1);

    // A second of nothing to do, and the worker is stopped.
    await until(async () => (await describeModel(kiln.management, 'lazy')).workers.length === 0);
    expect(kiln.output()).toMatch(/autoscaling model "lazy" version 1\.0 to 0 workers/);

    // ...and the next request starts another one.
    const again = await post(`${kiln.inference}/predictions/lazy`, { row: [4, 3, 2, 1] });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ y: y([4, 3, 2, 1]) });
    expect(String(again.json.worker)).not.toBe(String(first.json.worker));
  });

  test('min_worker=0 over the management API, and initial_workers=0 on register', async () => {
    const dir = tempDir();
    linearArchive(dir, 'linear', 'batchSize: 1\n', 'linear');
    linearArchive(dir, 'linear', 'batchSize: 1\n', 'later', '2.0');
    const kiln = await startKiln(['--model-store', 'store', '--models', 'linear=linear.mar', '--enable-model-api'], { cwd: dir });
    const scaled = await put(`${kiln.management}/models/linear?min_worker=0&synchronous=true`);
    expect(scaled).toMatchObject({ status: 200, json: { status: 'Workers scaled to 0 for model: linear, version: 1.0' } });
    expect(await describeModel(kiln.management, 'linear')).toMatchObject({ minWorkers: 0, maxWorkers: 1, workers: [] });
    expect((await post(`${kiln.inference}/predictions/linear`, { row: [1, 1, 1, 1] })).json).toMatchObject({ y: y([1, 1, 1, 1]) });

    const registered = await fetch(`${kiln.management}/models?url=later.mar&initial_workers=0`, { method: 'POST' });
    expect(registered.status).toBe(200);
    expect(await registered.json()).toEqual({ status: 'Model "later" Version: 2.0 registered with 0 initial workers' });
    expect((await describeModel(kiln.management, 'later')).workers).toEqual([]);
    expect((await post(`${kiln.inference}/predictions/later`, { row: [0, 1, 0, 1] })).json).toMatchObject({ y: y([0, 1, 0, 1]) });

    // max_worker=0 cannot serve anything: refused, naming the bound.
    const refused = await put(`${kiln.management}/models/linear?min_worker=0&max_worker=0`);
    expect(refused.status).toBe(400);
    expect(String(refused.json.message)).toContain('max_worker must be >= 1');
  });

  test('a worker started on demand that fails to load fails the waiting request with its error, and the server carries on', async () => {
    const dir = tempDir();
    linearArchive(dir, 'throw-in-initialize', 'minWorkers: 0\n', 'broken');
    linearArchive(dir, 'linear', 'batchSize: 1\n', 'linear');
    const kiln = await startKiln(['--model-store', 'store', '--models', 'broken=broken.mar', 'linear=linear.mar'], { cwd: dir });
    const failed = await post(`${kiln.inference}/predictions/broken`, { row: [1, 2, 3, 4] });
    expect(failed.status).toBe(503);
    expect(failed.json).toMatchObject({ errorCode: 'KILN_ERR_MODEL_NOT_READY' });
    expect(String(failed.json.message)).toContain('the label file is missing from this archive');
    // Right after, the next request is not made to wait for another doomed worker: it is told when.
    const soon = await post(`${kiln.inference}/predictions/broken`, { row: [1, 2, 3, 4] });
    expect(soon.status).toBe(503);
    expect(String(soon.json.message)).toMatch(/the next one is started for a request that comes after \d{4}-/);
    expect((await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).json).toMatchObject({ y: y([1, 2, 3, 4]) });
    // A second later, a request tries again (and fails again the same way, with the same words).
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const retried = await post(`${kiln.inference}/predictions/broken`, { row: [1, 2, 3, 4] });
    expect(String(retried.json.message)).toContain('the label file is missing from this archive');
    expect(kiln.output().match(/starting a worker of model "broken" for a waiting request/g)).toHaveLength(2);
  });

  test('maxWorkers: a queue that stays adds workers, up to maxWorkers, and idleness takes them away', async () => {
    const dir = tempDir();
    linearArchive(dir, 'slow-inference', 'minWorkers: 1\nmaxWorkers: 2\nscaleUpAfter: 100\nscaleDownAfter: 1\n', 'slow');
    const kiln = await startKiln(['--model-store', 'store', '--models', 'slow=slow.mar'], { cwd: dir });
    expect((await describeModel(kiln.management, 'slow')).workers).toHaveLength(1);
    // 200 ms a request on one worker: 16 requests keep the queue full for seconds.
    const rows = Array.from({ length: 16 }, (_, i) => [i, 1, 2, 3]);
    const answers = await Promise.all(rows.map((row) => post(`${kiln.inference}/predictions/slow`, { row })));
    answers.forEach((answer, i) => expect(answer.json).toMatchObject({ y: y(rows[i]!) }));
    // Both workers answered some of them, and no more than two were started.
    expect(new Set(answers.map((a) => String(a.json.worker))).size).toBe(2);
    expect(kiln.output().match(/autoscaling model "slow" version 1\.0 to 2 workers/g)).toHaveLength(1);
    await until(async () => (await describeModel(kiln.management, 'slow')).workers.length === 1);
    expect(kiln.output()).toMatch(/autoscaling model "slow" version 1\.0 to 1 workers/);
  });
});
