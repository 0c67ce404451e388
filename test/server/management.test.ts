import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { linearExpected } from '../support/onnx-models.js';
import { linearArchive, post, startKiln, until } from '../support/server.js';

const y = (row: number[]) => linearExpected(row).map(Math.fround);

/** One call to an API; `json` is the answer's body, read as `T` (an error body unless told otherwise). */
async function call<T = Record<string, unknown>>(
  method: string,
  url: string,
  body?: unknown,
): Promise<{ status: number; headers: Headers; json: T }> {
  const response = await fetch(url, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: response.status, headers: response.headers, json: (await response.json()) as T };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A model store with linear 1.0 and 2.0, and three small models for paging. */
function store() {
  const dir = tempDir();
  linearArchive(dir, 'linear', 'batchSize: 1\n', 'linear', '1.0');
  linearArchive(dir, 'linear', 'batchSize: 2\n', 'linear-two', '2.0');
  for (const name of ['alpha', 'beta', 'gamma']) linearArchive(dir, 'linear', 'batchSize: 1\n', name, '1');
  return dir;
}

describe('management API', () => {
  test('registering and unregistering are off by default', async () => {
    const dir = store();
    const kiln = await startKiln(['--model-store', 'store', '--models', 'linear=linear.mar'], { cwd: dir });
    const register = await call('POST', `${kiln.management}/models?url=alpha.mar`);
    expect(register.status).toBe(405);
    expect(register.json).toMatchObject({ code: 405, type: 'MethodNotAllowedException', errorCode: 'KILN_ERR_MODEL_API_DISABLED' });
    expect(String(register.json.message)).toContain('--enable-model-api');
    expect((await call('DELETE', `${kiln.management}/models/linear`)).status).toBe(405);
    expect((await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).status).toBe(200);
  });

  test("TorchServe's habits: empty parameters take their defaults, and a trailing slash is the same path", async () => {
    const dir = store();
    const kiln = await startKiln(
      ['--model-store', 'store', '--models', 'linear=linear.mar', 'alpha=alpha.mar', '--enable-model-api', '--isolation', 'process'],
      { cwd: dir },
    );
    const list = await call<{ models: { modelName: string }[]; nextPageToken?: string }>(
      'GET',
      `${kiln.management}/models?limit=&next_page_token=`,
    );
    expect(list.status).toBe(200);
    expect(list.json.models.map((m) => m.modelName)).toEqual(['alpha', 'linear']); // limit 100 from 0
    expect(list.json.nextPageToken).toBeUndefined();
    // Scaling with an empty max_worker: the default (min_worker) applies.
    expect((await call('PUT', `${kiln.management}/models/linear/?min_worker=2&max_worker=&synchronous=true`)).status).toBe(200);
    const described = await call<{ workers: unknown[]; maxWorkers: number }[]>('GET', `${kiln.management}/models/linear/`);
    expect(described.status).toBe(200);
    expect(described.json[0]!.workers).toHaveLength(2);
    expect(described.json[0]!.maxWorkers).toBe(2);
    expect((await post(`${kiln.inference}/predictions/linear/`, { row: [1, 2, 3, 4] })).json).toMatchObject({ y: y([1, 2, 3, 4]) });
    const removed = await call('DELETE', `${kiln.management}/models/alpha/?synchronous=true`);
    expect(removed.status).toBe(200);
    expect(removed.json).toEqual({ status: 'Model "alpha" unregistered' });
    // A parameter that is not empty is still checked.
    expect((await call('GET', `${kiln.management}/models?limit=abc`)).status).toBe(400);
  });

  test('register and scale parameters are honoured or refused by name, never ignored', async () => {
    const dir = store();
    const kiln = await startKiln(['--model-store', 'store', '--models', 'linear=linear.mar', '--enable-model-api'], { cwd: dir });
    const refused = async (method: string, path: string, body: unknown, message: string) => {
      const answer = await call(method, `${kiln.management}${path}`, body);
      expect(answer.status, path).toBe(400);
      expect(answer.json).toMatchObject({ errorCode: 'KILN_ERR_INVALID_PARAMETER', message });
    };
    await refused(
      'POST',
      '/models?url=alpha.mar&runtime=python4',
      undefined,
      'query parameter runtime must be equal to one of the allowed values (node), received "python4"',
    );
    await refused(
      'POST',
      '/models?url=alpha.mar&handler=image_classifier',
      undefined,
      expect.stringContaining('Parameter handler cannot be given on register'),
    );
    await refused(
      'POST',
      '/models',
      { url: 'alpha.mar', s3_sse_kms: true },
      'body field s3_sse_kms is not one this route takes; it takes url, model_name, batch_size, max_batch_delay, initial_workers, synchronous, response_timeout, startup_timeout, runtime, handler',
    );
    await refused(
      'PUT',
      '/models/linear?min_worker=2&number_gpu=1',
      undefined,
      'query parameter number_gpu is not one this route takes; it takes min_worker, max_worker, synchronous, timeout',
    );
    // None of the refused calls registered anything.
    expect((await call<{ models: unknown[] }>('GET', `${kiln.management}/models`)).json.models).toHaveLength(1);

    // runtime=node and startup_timeout are taken, and show in describe.
    const registered = await call('POST', `${kiln.management}/models?url=alpha.mar&runtime=node&startup_timeout=45`);
    expect(registered.status).toBe(200);
    const alpha = await call<{ startupTimeout: number }[]>('GET', `${kiln.management}/models/alpha`);
    expect(alpha.json[0]!.startupTimeout).toBe(45);

    // timeout=0 on a synchronous scale: 206 at once, and the workers come up anyway.
    const scaled = await call('PUT', `${kiln.management}/models/linear?min_worker=2&synchronous=true&timeout=0`);
    expect(scaled).toMatchObject({ status: 206, json: { status: 'Workers scaling in progress...' } });
    await until(
      async () =>
        (await call<{ workers: { status: string }[] }[]>('GET', `${kiln.management}/models/linear`)).json[0]!.workers.filter(
          (w) => w.status === 'READY',
        ).length === 2,
    );
  });

  test('register (query or JSON body), describe, list with pages, set-default, unregister', async () => {
    const dir = store();
    // Process workers, so that unregistering can be seen to end them.
    const kiln = await startKiln(
      ['--model-store', 'store', '--models', 'linear=linear.mar', '--enable-model-api', '--isolation', 'process'],
      { cwd: dir },
    );
    const m = kiln.management;

    const second = await call('POST', `${m}/models?url=linear-two.mar&model_name=linear&batch_size=4&max_batch_delay=7&initial_workers=1`);
    expect(second).toMatchObject({ status: 200, json: { status: 'Model "linear" Version: 2.0 registered with 1 initial workers' } });
    expect((await post(`${kiln.inference}/predictions/linear/2.0`, { row: [1, 1, 1, 1] })).json).toMatchObject({ y: y([1, 1, 1, 1]) });
    for (const name of ['alpha', 'beta']) expect((await call('POST', `${m}/models`, { url: `${name}.mar` })).status).toBe(200);
    const async = await call('POST', `${m}/models?url=gamma.mar&synchronous=false`);
    expect(async).toMatchObject({ status: 202, json: { status: 'Processing worker updates...' } });
    expect((await call('POST', `${m}/models?url=alpha.mar`)).json).toMatchObject({ errorCode: 'KILN_ERR_MODEL_CONFLICT' });

    const [described] = (await call<Record<string, unknown>[]>('GET', `${m}/models/linear`)).json;
    expect(described).toMatchObject({
      modelName: 'linear',
      modelVersion: '1.0',
      isDefault: true,
      status: 'ready',
      isolation: 'process',
      batchSize: 1,
      minWorkers: 1,
      jobQueueStatus: { remainingCapacity: 100, pendingRequests: 0 },
    });
    const worker = (described!.workers as { pid: number; status: string; memoryUsage: number }[])[0]!;
    expect(worker.status).toBe('READY');
    expect(worker.memoryUsage).toBeGreaterThan(10 * 1024 * 1024);
    expect(alive(worker.pid)).toBe(true);
    const all = (await call<{ modelVersion: string; batchSize: number; maxBatchDelay: number }[]>('GET', `${m}/models/linear/all`)).json;
    expect(all.map((d) => [d.modelVersion, d.batchSize])).toEqual([
      ['1.0', 1],
      ['2.0', 4],
    ]);
    expect(all[1]!.maxBatchDelay).toBe(7);
    expect((await call('GET', `${m}/models/linear/9`)).status).toBe(404);

    await until(async () => (await call<{ status: string }[]>('GET', `${m}/models/gamma`)).json[0]!.status === 'ready');
    const first = await call('GET', `${m}/models?limit=2`);
    expect(first.json).toEqual({
      nextPageToken: '2',
      models: [
        { modelName: 'alpha', modelUrl: join(dir, 'store/alpha.mar') },
        { modelName: 'beta', modelUrl: join(dir, 'store/beta.mar') },
      ],
    });
    const rest = await call('GET', `${m}/models?limit=2&next_page_token=2`);
    expect((rest.json.models as { modelName: string }[]).map((x) => x.modelName)).toEqual(['gamma', 'linear']);
    expect(rest.json.nextPageToken).toBeUndefined();

    expect((await call('DELETE', `${m}/models/linear/1.0`)).json).toMatchObject({ errorCode: 'KILN_ERR_DEFAULT_VERSION_IN_USE' });
    expect((await call('PUT', `${m}/models/linear/2.0/set-default`)).json).toEqual({
      status: 'Default version successfully updated for model "linear" to "2.0"',
    });
    expect((await call<{ modelVersion: string }[]>('GET', `${m}/models/linear`)).json[0]!.modelVersion).toBe('2.0');
    const removed = await call('DELETE', `${m}/models/linear/1.0`);
    expect(removed).toMatchObject({ status: 200, json: { status: 'Model "linear" unregistered' } });
    expect(alive(worker.pid)).toBe(false);
    expect((await post(`${kiln.inference}/predictions/linear/1.0`, { row: [1, 1, 1, 1] })).status).toBe(404);
    expect((await post(`${kiln.inference}/predictions/linear`, { row: [1, 1, 1, 1] })).status).toBe(200);
  });

  test.each(['thread', 'process'] as const)('scaling starts and stops real %s workers', async (isolation) => {
    const dir = store();
    const kiln = await startKiln(['--model-store', 'store', '--models', 'linear=linear.mar', '--isolation', isolation], { cwd: dir });
    type Described = { id: string; pid: number; threadId?: number; status: string };
    const workers = async () => (await call<{ workers: Described[] }[]>('GET', `${kiln.management}/models/linear`)).json[0]!.workers;
    const key = (w: Described) => `${w.pid}:${w.threadId ?? 0}`;
    const up = await call('PUT', `${kiln.management}/models/linear?min_worker=3&synchronous=true`);
    expect(up).toMatchObject({ status: 200, json: { status: 'Workers scaled to 3 for model: linear, version: 1.0' } });
    const three = await workers();
    expect(three.map((w) => w.status)).toEqual(['READY', 'READY', 'READY']);
    expect(new Set(three.map(key)).size).toBe(3);
    if (isolation === 'process') {
      expect(new Set(three.map((w) => w.pid)).size).toBe(3);
      expect(three.every((w) => alive(w.pid))).toBe(true);
    } else {
      expect(new Set(three.map((w) => w.pid)).size).toBe(1); // threads of the server's own process
      expect(three.every((w) => typeof w.threadId === 'number' && w.threadId > 0)).toBe(true);
    }
    // All three serve: concurrent requests spread over more than one worker.
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] })),
    );
    expect(new Set(answers.map((a) => a.json.worker)).size).toBeGreaterThan(1);
    expect(answers.every((a) => three.some((w) => key(w) === a.json.worker))).toBe(true);

    const down = await call('PUT', `${kiln.management}/models/linear?min_worker=1&synchronous=false`);
    expect(down).toMatchObject({ status: 202, json: { status: 'Processing worker updates...' } });
    await until(async () => (await workers()).length === 1);
    const [kept] = await workers();
    if (isolation === 'process') expect(three.filter((w) => w.pid !== kept!.pid).every((w) => !alive(w.pid))).toBe(true);
    const after = await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] });
    expect(after.json).toMatchObject({ y: y([1, 2, 3, 4]), worker: key(kept!) });
  });

  describe('bad parameters', () => {
    let shared: Awaited<ReturnType<typeof startKiln>>;
    let dir: string;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'kiln-params-'));
      linearArchive(dir, 'linear', 'batchSize: 1\n', 'linear', '1.0');
      linearArchive(dir, 'linear', 'batchSize: 1\n', 'alpha', '1');
      linearArchive(dir, 'throw-in-initialize', 'batchSize: 1\n', 'broken', '1');
      shared = await startKiln(['--model-store', 'store', '--models', 'linear=linear.mar', '--enable-model-api'], {
        cwd: dir,
        shared: true,
      });
    });
    afterAll(async () => {
      await shared?.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    test.each([
      ['PUT', '/models/linear?min_worker=abc', 'query parameter min_worker must be integer, received "abc"'],
      ['PUT', '/models/linear?min_worker=-1', 'query parameter min_worker must be >= 0, received -1'],
      ['PUT', '/models/linear?min_worker=3&max_worker=2', 'max_worker cannot be less than min_worker (max_worker 2, min_worker 3).'],
      ['GET', '/models?limit=500', 'query parameter limit must be <= 100, received 500'],
      ['GET', '/models?next_page_token=x', 'query parameter next_page_token must be integer, received "x"'],
      ['POST', '/models?url=alpha.mar&batch_size=big', 'query parameter batch_size must be integer, received "big"'],
      ['POST', '/models', 'Parameter url is required'],
    ])('%s %s → 400 naming the parameter', async (method, path, message) => {
      const answer = await call(method, `${shared.management}${path}`);
      expect(answer.status).toBe(400);
      expect(answer.json).toMatchObject({ code: 400, errorCode: 'KILN_ERR_INVALID_PARAMETER' });
      expect(String(answer.json.message)).toContain(message);
    });

    test('a model whose workers cannot start is 500 KILN_ERR_SCALE_FAILED, and is not registered', async () => {
      const answer = await call('POST', `${shared.management}/models?url=broken.mar`);
      expect(answer.status).toBe(500);
      expect(answer.json).toMatchObject({ code: 500, errorCode: 'KILN_ERR_SCALE_FAILED' });
      expect(String(answer.json.message)).toMatch(
        /^model "broken" version 1 could not start: .*the label file is missing from this archive.*; it was not registered$/,
      );
      expect((await call('GET', `${shared.management}/models/broken`)).status).toBe(404);
    });

    test('a body that is not JSON is 415, naming the content type', async () => {
      const response = await fetch(`${shared.management}/models`, {
        method: 'POST',
        body: 'url=alpha.mar',
        headers: { 'content-type': 'text/plain' },
      });
      expect(response.status).toBe(415);
      expect(await response.json()).toEqual({
        code: 415,
        type: 'UnsupportedMediaTypeException',
        message: 'this API takes application/json bodies (or query parameters), received text/plain',
        errorCode: 'KILN_ERR_UNSUPPORTED_MEDIA_TYPE',
      });
    });
  });

  test('url must be a file in the model store unless allowedUrls says otherwise', async () => {
    const dir = store();
    writeFileSync(join(dir, 'outside.mar'), 'x');
    const kiln = await startKiln(['--model-store', 'store', '--enable-model-api'], { cwd: dir });
    for (const url of [
      '../outside.mar',
      join(dir, 'store/alpha.mar'),
      'http://127.0.0.1:1/alpha.mar',
      'file:///etc/passwd',
      'sub/alpha.mar',
      '..\\alpha.mar',
      'missing.mar',
    ]) {
      const answer = await call('POST', `${kiln.management}/models?url=${encodeURIComponent(url)}`);
      expect(answer.status, url).toBe(404);
      expect(answer.json, url).toMatchObject({ errorCode: 'KILN_ERR_URL_NOT_ALLOWED' });
    }
    const allowing = await startKiln(['--enable-model-api', '--allowed-urls', `file://${dir}/store/.*`], { cwd: dir });
    for (const escape of [`file://${dir}/store/../outside.mar`, `file://${dir}/store/%2e%2e/outside.mar`]) {
      const refused = await call('POST', `${allowing.management}/models?url=${encodeURIComponent(escape)}`);
      expect(refused, escape).toMatchObject({ status: 404, json: { errorCode: 'KILN_ERR_URL_NOT_ALLOWED' } });
    }
    const answer = await call(
      'POST',
      `${allowing.management}/models?url=${encodeURIComponent(`file://${dir}/store/beta.mar`)}&initial_workers=2`,
    );
    expect(answer).toMatchObject({ status: 200, json: { status: 'Model "beta" Version: 1 registered with 2 initial workers' } });
  });
});
