import { describe, expect, test } from 'vitest';
import { kiln as runKiln, tempDir } from '../support/kiln.js';
import { linearExpected } from '../support/onnx-models.js';
import { linearArchive, post, startKiln } from '../support/server.js';

const y = (row: number[]) => linearExpected(row).map(Math.fround);
const rows = (n: number) => Array.from({ length: n }, (_, i) => [i, -i / 2, 1 + i / 4, (i % 5) - 2]);

describe('kiln serve: TorchServe inference API', () => {
  test('answers predictions computed by the model, one at a time and under 32 concurrent requests, with batches > 1', async () => {
    const archive = linearArchive(tempDir(), 'linear', 'batchSize: 8\nmaxBatchDelay: 50\n');
    const kiln = await startKiln(['--models', `linear=${archive}`]);
    expect(kiln.output()).toMatch(/model linear 1\.0 ready: 1 thread worker, batchSize 8, maxBatchDelay 50 ms/);

    for (const row of rows(3)) {
      const answer = await post(`${kiln.inference}/predictions/linear`, { row });
      expect(answer.status).toBe(200);
      expect(answer.json).toMatchObject({ y: y(row), batch: 1 });
    }

    const many = rows(32);
    const answers = await Promise.all(many.map((row) => post(`${kiln.inference}/predictions/linear/1.0`, { row })));
    answers.forEach((answer, i) => expect(answer.json).toMatchObject({ y: y(many[i]!) }));
    const batches = answers.map((a) => a.json.batch as number);
    expect(Math.max(...batches)).toBeGreaterThan(1);
    expect(Math.max(...batches)).toBeLessThanOrEqual(8);

    const metrics = await (await fetch(`${kiln.metrics}/metrics`)).text();
    expect(metrics).toMatch(
      /kiln_requests_total\{model_name="linear",model_version="1.0",status="200",error_code="",api="torchserve"\} 35/,
    );
    expect(metrics).toMatch(/kiln_batches_total\{model_name="linear",model_version="1.0",batch_size="[2-8]"\} \d+/);

    // The server-side breakdown: one queue time per request, each phase once per batch.
    const samples = new Map(
      metrics
        .split('\n')
        .filter((line) => line !== '' && !line.startsWith('#'))
        .map((line) => [line.slice(0, line.lastIndexOf(' ')), Number(line.slice(line.lastIndexOf(' ') + 1))]),
    );
    const value = (series: string) => samples.get(series);
    const model = 'model_name="linear",model_version="1.0"';
    const batchCount = [...metrics.matchAll(/^kiln_batches_total\{.*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    expect(value(`kiln_queue_seconds_count{${model}}`)).toBe(35);
    expect(value(`kiln_queue_seconds_bucket{le="+Inf",${model}}`)).toBe(35);
    for (const phase of ['preprocess', 'inference', 'postprocess', 'total']) {
      expect(value(`kiln_batch_seconds_count{${model},phase="${phase}"}`)).toBe(batchCount);
      expect(value(`kiln_batch_seconds_sum{${model},phase="${phase}"}`)).toBeGreaterThan(0);
    }
    // A batch's handler phases happen inside its round trip.
    const sum = (phase: string) => value(`kiln_batch_seconds_sum{${model},phase="${phase}"}`) ?? NaN;
    expect(sum('preprocess') + sum('inference') + sum('postprocess')).toBeLessThan(sum('total'));
  });

  test('a lone request with batchSize 1 does not wait for maxBatchDelay 5000', async () => {
    const archive = linearArchive(tempDir(), 'linear', 'batchSize: 1\nmaxBatchDelay: 5000\n');
    const kiln = await startKiln(['--models', `linear=${archive}`]);
    const started = performance.now();
    const answer = await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] });
    expect(answer.json).toMatchObject({ y: y([1, 2, 3, 4]) });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  test('maxBatchDelay: auto is taken, shown, and serves sequential requests one by one', async () => {
    const archive = linearArchive(tempDir(), 'linear', 'batchSize: 8\nmaxBatchDelay: auto\nmaxLatencyMs: 5\n');
    const kiln = await startKiln(['--models', `linear=${archive}`]);
    expect(kiln.output()).toMatch(/model linear 1\.0 ready: 1 thread worker, batchSize 8, maxBatchDelay auto, jobQueueSize 100/);
    for (let i = 0; i < 5; i++) {
      const answer = await post(`${kiln.inference}/predictions/linear`, { row: [i, 2, 3, 4] });
      expect(answer.json).toMatchObject({ y: y([i, 2, 3, 4]), batch: 1 });
    }
  });

  test('ping, request ids, multipart bodies, and errors in TorchServe shape with Kiln codes', async () => {
    const archive = linearArchive(tempDir(), 'linear', 'batchSize: 1\n');
    const kiln = await startKiln(['--models', `linear=${archive}`, '--max-request-size', '2000']);

    const ping = await fetch(`${kiln.inference}/ping`);
    expect(ping.status).toBe(200);
    expect(await ping.json()).toEqual({ status: 'Healthy' });
    expect(ping.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);

    const mine = await post(
      `${kiln.inference}/predictions/linear`,
      { row: [1, 2, 3, 4] },
      { 'content-type': 'application/json', 'x-request-id': 'client-42' },
    );
    expect(mine.headers.get('x-request-id')).toBe('client-42');

    const form = new FormData();
    form.append('data', new Blob([JSON.stringify({ row: [4, 3, 2, 1] })], { type: 'application/json' }), 'row.json');
    const multipart = await fetch(`${kiln.inference}/predictions/linear`, { method: 'POST', body: form });
    expect(multipart.status).toBe(200);
    expect(await multipart.json()).toMatchObject({ y: y([4, 3, 2, 1]) });

    const unknown = await post(`${kiln.inference}/predictions/resnet`, { row: [1, 2, 3, 4] });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual({
      code: 404,
      type: 'ModelNotFoundException',
      message: 'Model not found: resnet; registered models: linear',
      errorCode: 'KILN_ERR_MODEL_NOT_FOUND',
    });
    expect(unknown.headers.get('x-request-id')).toBeTruthy();

    const version = await post(`${kiln.inference}/predictions/linear/9`, { row: [1, 2, 3, 4] });
    expect(version.status).toBe(404);
    expect(version.json).toMatchObject({
      type: 'ModelVersionNotFoundException',
      message: 'Model version: 9 does not exist for model: linear; versions: 1.0',
      errorCode: 'KILN_ERR_VERSION_NOT_FOUND',
    });

    const big = await post(`${kiln.inference}/predictions/linear`, 'x'.repeat(5000), { 'content-type': 'text/plain' });
    expect(big.status).toBe(413);
    expect(big.json).toMatchObject({ code: 413, errorCode: 'KILN_ERR_REQUEST_TOO_LARGE' });
    expect(String(big.json.message)).toContain('maxRequestSize (2000 bytes)');

    // Multipart parts count toward the limit together, not one by one.
    const parts = new FormData();
    parts.append('a', new Blob([Buffer.alloc(1500)]), 'a.bin');
    parts.append('b', new Blob([Buffer.alloc(1500)]), 'b.bin');
    const split = await fetch(`${kiln.inference}/predictions/linear`, { method: 'POST', body: parts });
    expect(split.status).toBe(413);
    expect(await split.json()).toMatchObject({ errorCode: 'KILN_ERR_REQUEST_TOO_LARGE' });
    const oneBig = new FormData();
    oneBig.append('data', new Blob([Buffer.alloc(5000)]), 'big.bin');
    expect((await fetch(`${kiln.inference}/predictions/linear`, { method: 'POST', body: oneBig })).status).toBe(413);

    const bad = await post(`${kiln.inference}/predictions/linear`, { row: 'nope' });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({
      code: 400,
      errorCode: 'KILN_ERR_BAD_REQUEST',
      message: 'send {"row": [4 numbers]}, received {"row":"nope"}',
    });

    // `curl -T file` sends PUT; the route takes it as TorchServe's does.
    const put = await fetch(`${kiln.inference}/predictions/linear`, {
      method: 'PUT',
      body: JSON.stringify({ row: [1, 2, 3, 4] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(await put.json()).toMatchObject({ y: y([1, 2, 3, 4]) });
    const get = await fetch(`${kiln.inference}/predictions/linear`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST, PUT');
    expect(await get.json()).toEqual({
      code: 405,
      type: 'MethodNotAllowedException',
      message: 'Requested method is not allowed, please refer to API document: GET /predictions/linear takes POST, PUT',
      errorCode: 'KILN_ERR_METHOD_NOT_ALLOWED',
    });
    const nowhere = await fetch(`${kiln.inference}/nowhere`);
    expect(nowhere.status).toBe(404);
    expect(await nowhere.json()).toMatchObject({ errorCode: 'KILN_ERR_ROUTE_NOT_FOUND' });
  });

  test('/ping and /v2/health/ready agree: an archive refused at start makes both unhealthy, and the other model serves', async () => {
    const archive = linearArchive(tempDir(), 'linear', 'batchSize: 1\n');
    const kiln = await startKiln(['--models', `linear=${archive}`, 'nope=/nonexistent/nope.mar']);
    const ping = await fetch(`${kiln.inference}/ping`);
    expect(ping.status).toBe(500);
    expect(await ping.json()).toEqual({ status: 'Unhealthy', problems: ['nope: /nonexistent/nope.mar: no such file or folder'] });
    const ready = await fetch(`${kiln.inference}/v2/health/ready`);
    expect({ status: ready.status, json: await ready.json() }).toEqual({ status: 503, json: { ready: false } });
    expect((await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).json).toMatchObject({ y: y([1, 2, 3, 4]) });
  });

  test('--allow-partial-start: a model refused at start, or whose workers never loaded, no longer makes the server unready', async () => {
    const dir = tempDir();
    const archive = linearArchive(dir, 'linear', 'batchSize: 1\n');
    const broken = linearArchive(dir, 'throw-in-initialize', 'batchSize: 1\n', 'broken');
    const args = ['--models', `linear=${archive}`, 'nope=/nonexistent/nope.mar', `broken=${broken}`];
    const kiln = await startKiln([...args, '--allow-partial-start']);
    expect(kiln.output()).toContain('model nope failed to load');
    expect(kiln.output()).toContain('model broken 1.0 FAILED');
    const ping = await fetch(`${kiln.inference}/ping`);
    expect({ status: ping.status, json: await ping.json() }).toEqual({ status: 200, json: { status: 'Healthy' } });
    const ready = await fetch(`${kiln.inference}/v2/health/ready`);
    expect(ready.status).toBe(200);
    // The failed model itself is still not ready, and says why.
    expect((await fetch(`${kiln.inference}/v2/models/broken/ready`)).status).toBe(503);
    // Without the flag, the same start is unhealthy on both counts.
    const strict = await startKiln(args);
    const problems = ((await (await fetch(`${strict.inference}/ping`)).json()) as { problems: string[] }).problems;
    expect(problems.map((p) => p.split(':')[0])).toEqual(['nope', 'broken 1.0']);
  });

  test('--models all loads every archive in --model-store: zip, tgz and folder alike, each with its own version', async () => {
    const dir = tempDir();
    linearArchive(dir, 'linear', 'batchSize: 1\n', 'zipped', '1.0');
    linearArchive(dir, 'linear', 'batchSize: 1\n', 'tarred', '2.0', 'tgz');
    linearArchive(dir, 'linear', 'batchSize: 1\n', 'folder', '3.0', 'no-archive');
    const kiln = await startKiln(['--model-store', 'store', '--models', 'all'], { cwd: dir });
    for (const [name, version] of [
      ['zipped', '1.0'],
      ['tarred', '2.0'],
      ['folder', '3.0'],
    ] as const) {
      expect(kiln.output()).toContain(`model ${name} ${version} ready`);
      const answer = await post(`${kiln.inference}/predictions/${name}/${version}`, { row: [1, 1, 1, 1] });
      expect(answer.json).toMatchObject({ y: y([1, 1, 1, 1]) });
    }
    const list = (await (await fetch(`${kiln.management}/models`)).json()) as { models: { modelName: string }[] };
    expect(list.models.map((m) => m.modelName)).toEqual(['folder', 'tarred', 'zipped']);
  });

  test('a bad --models stops the server before it listens, with the reason', () => {
    const run = runKiln([
      'serve',
      '--models',
      'all',
      '--inference-address',
      'http://127.0.0.1:0',
      '--management-address',
      'http://127.0.0.1:0',
      '--metrics-address',
      'http://127.0.0.1:0',
    ]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KILN_ERR_SERVER_CONFIG_INVALID: --models all needs --model-store');
    expect(run.stdout).not.toContain('listening');
  });
});
