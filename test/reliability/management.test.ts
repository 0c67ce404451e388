import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { answer, catalogueServer, expectRefusal, expectStillServing } from '../support/catalogue.js';
import { linearArchive, startKiln } from '../support/server.js';
import { tempDir } from '../support/kiln.js';

// jobQueueSize 4, so that a v1 request can ask for more than the queue holds.
const server = catalogueServer({ config: 'batchSize: 1\njobQueueSize: 4\n' });
const manage = async (method: string, path: string) => answer(await fetch(`${server().kiln.management}${path}`, { method }));

type Case = [string, string, string, number, string, string | RegExp];
const CASES: Case[] = [
  [
    'register: a url that climbs out of the model store',
    'POST',
    '/models?url=../../etc/passwd',
    404,
    'KILN_ERR_URL_NOT_ALLOWED',
    'url "../../etc/passwd" is refused: it climbs out of its folder with ".." or has a backslash',
  ],
  [
    'register: a url that climbs, percent-encoded',
    'POST',
    '/models?url=%2e%2e%2Fsecret.mar',
    404,
    'KILN_ERR_URL_NOT_ALLOWED',
    'is refused: it climbs out of its folder',
  ],
  [
    'register: a file:// url no pattern allows',
    'POST',
    '/models?url=file:///etc/passwd',
    404,
    'KILN_ERR_URL_NOT_ALLOWED',
    'url "file:///etc/passwd" is refused: give the file name of an archive in the model store',
  ],
  ['register: no url', 'POST', '/models?model_name=x', 400, 'KILN_ERR_INVALID_PARAMETER', 'Parameter url is required'],
  [
    'register: a name and version already registered',
    'POST',
    '/models?url=linear.mar',
    409,
    'KILN_ERR_MODEL_CONFLICT',
    'model "linear" version 1.0 is already registered',
  ],
  [
    'register: 1,000 initial workers',
    'POST',
    '/models?url=linear.mar&model_name=many&initial_workers=1000',
    400,
    'KILN_ERR_INVALID_PARAMETER',
    'query parameter initial_workers must be <= 256, received 1000',
  ],
  [
    'scale: min_worker=1000',
    'PUT',
    '/models/linear?min_worker=1000',
    400,
    'KILN_ERR_INVALID_PARAMETER',
    'query parameter min_worker must be <= 256, received 1000',
  ],
  [
    'scale: max_worker below min_worker',
    'PUT',
    '/models/linear?min_worker=3&max_worker=2',
    400,
    'KILN_ERR_INVALID_PARAMETER',
    'max_worker cannot be less than min_worker (max_worker 2, min_worker 3).',
  ],
  [
    'scale: min_worker not a number',
    'PUT',
    '/models/linear?min_worker=lots',
    400,
    'KILN_ERR_INVALID_PARAMETER',
    'query parameter min_worker must be integer, received "lots"',
  ],
  [
    'unregister: a model that is not there',
    'DELETE',
    '/models/ghost',
    404,
    'KILN_ERR_MODEL_NOT_FOUND',
    'Model not found: ghost; registered models: linear',
  ],
  [
    'describe: a version that is not there',
    'GET',
    '/models/linear/9.9',
    404,
    'KILN_ERR_VERSION_NOT_FOUND',
    'Model version: 9.9 does not exist for model: linear; versions: 1.0',
  ],
];

describe('management', () => {
  test.each(CASES)('%s', async (_, method, path, status, code, message) => {
    expectRefusal(await manage(method, path), status, code, message);
    await expectStillServing(server());
  });

  test('a v1 request with more instances than jobQueueSize is refused whole: nothing of it runs', async () => {
    const before = await (await fetch(`${server().kiln.metrics}/metrics`)).text();
    // Requests that reached the model's queue: the refusal itself is counted in kiln_requests_total.
    const count = (text: string) => Number(/kiln_queue_seconds_count\{[^}]*model_name="linear"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
    const got = await answer(
      await fetch(`${server().kiln.inference}/v1/models/linear:predict`, {
        method: 'POST',
        body: JSON.stringify({ instances: Array.from({ length: 5 }, () => ({ row: [1, 2, 3, 4] })) }),
        headers: { 'content-type': 'application/json' },
      }),
    );
    expectRefusal(
      got,
      400,
      'KILN_ERR_BAD_REQUEST',
      '5 instances are more than model "linear" queues at once (jobQueueSize 4); send at most 4 per request',
    );
    expect(count(await (await fetch(`${server().kiln.metrics}/metrics`)).text())).toBe(count(before)); // none of the five ran
    await expectStillServing(server());
  });
});

describe('auth', () => {
  test('a wrong token and no token: 401 with WWW-Authenticate; the right one passes; the token is never logged', async () => {
    const dir = tempDir();
    const token = randomBytes(24).toString('hex');
    writeFileSync(join(dir, 'token'), `${token}\n`);
    linearArchive(dir, 'linear', 'batchSize: 1\n');
    const kiln = await startKiln(['--model-store', 'store', '--models', 'linear=linear.mar', '--token-file', join(dir, 'token')], {
      cwd: dir,
    });
    const predict = (auth?: string) =>
      fetch(`${kiln.inference}/predictions/linear`, {
        method: 'POST',
        body: '{"row":[1,2,3,4]}',
        headers: { 'content-type': 'application/json', ...(auth === undefined ? {} : { authorization: auth }) },
      });
    for (const auth of [undefined, 'Bearer wrong-token-of-enough-length', `Basic ${token}`]) {
      const refused = await predict(auth);
      expectRefusal(await answer(refused.clone()), 401, 'KILN_ERR_UNAUTHORIZED', /token/i);
      expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    const scaled = await fetch(`${kiln.management}/models/linear?min_worker=2`, { method: 'PUT' });
    expectRefusal(await answer(scaled), 401, 'KILN_ERR_UNAUTHORIZED', /token/i);
    expect((await predict(`Bearer ${token}`)).status).toBe(200);
    expect(await kiln.stop('SIGTERM')).toBe(0);
    expect(kiln.output()).not.toContain(token);
  });
});
