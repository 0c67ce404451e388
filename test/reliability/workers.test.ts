import { describe, expect, test } from 'vitest';
import { answer, catalogueServer, expectNothingLeft, expectRefusal, expectStillServing, workerPids } from '../support/catalogue.js';
import { linearExpected } from '../support/onnx-models.js';
import { linearArchive, until } from '../support/server.js';

// fthread and fprocess: the faulty handler (test/fixtures/handlers/faulty.ts) on each transport;
// linear is the other model, which must not notice. crashloop and broken are registered by their tests.
const FAULTY = 'batchSize: 1\nresponseTimeout: 2\nworkerHeapLimitMb: 96\n';
const server = catalogueServer({
  models: ['fthread=fthread.mar', 'fprocess=fprocess.mar'],
  prepare: (dir) => {
    linearArchive(dir, 'faulty', `isolation: thread\n${FAULTY}`, 'fthread');
    linearArchive(dir, 'faulty', `isolation: process\n${FAULTY}`, 'fprocess');
    linearArchive(dir, 'faulty', 'isolation: process\nhandler:\n  crashAfterMs: 300\n', 'crashloop');
    linearArchive(dir, 'throw-in-initialize', 'isolation: process\n', 'broken');
  },
});
const MODELS = ['fthread', 'fprocess'];

const predict = async (model: string, first: number) =>
  answer(
    await fetch(`${server().kiln.inference}/predictions/${model}`, {
      method: 'POST',
      body: JSON.stringify({ row: [first, 1, 1, 1] }),
      headers: { 'content-type': 'application/json' },
    }),
  );

/** The faulty model answers a good row again (its worker restarted), and so does every other model. */
async function recovers(model: string): Promise<void> {
  await until(async () => (await predict(model, 1)).status === 200, 20_000);
  expect((await predict(model, 1)).json.y).toEqual(linearExpected([1, 1, 1, 1]).map(Math.fround));
  await expectStillServing(server(), MODELS);
}

type Fault = [string, number, number, string, RegExp];
const both: Fault[] = [
  [
    'process.exit(3)',
    601,
    500,
    'KILN_ERR_WORKER_DIED',
    /died while running this request \(exit code 3; last error: about to exit: row 601\); it is being restarted$/,
  ],
  [
    'a handler that never answers',
    604,
    504,
    'KILN_ERR_RESPONSE_TIMEOUT',
    /did not answer within responseTimeout \(2 s\); worker \S+ was stopped and is being restarted$/,
  ],
  [
    'handle() returns no result for its request',
    605,
    500,
    'KILN_ERR_HANDLER_FAILED',
    /^handle\(\) must return one result per request: it got 1 requests and returned 0 results$/,
  ],
  [
    'an answer that contains itself',
    606,
    500,
    'KILN_ERR_HANDLER_FAILED',
    /the handler returned an object that contains itself \(a circular reference\), which JSON cannot carry/,
  ],
  [
    'an answer over maxResponseSize',
    609,
    500,
    'KILN_ERR_RESPONSE_TOO_LARGE',
    /^the answer of model "f(thread|process)" is 70000\d\d bytes, more than maxResponseSize \(6553500 bytes\); return less, or raise --max-response-size$/,
  ],
  [
    'a heap blow-up past workerHeapLimitMb (96)',
    607,
    500,
    'KILN_ERR_WORKER_DIED',
    /died while running this request \(.*(JavaScript heap out of memory|JS heap out of memory)\); it is being restarted$/,
  ],
];
const processOnly: Fault[] = [
  [
    'process.abort()',
    602,
    500,
    'KILN_ERR_WORKER_DIED',
    /died while running this request \(killed by SIGABRT(; last error: (?!\d+: )[^\n]+)?\); it is being restarted$/,
  ],
  [
    'SIGKILL of its own process',
    603,
    500,
    'KILN_ERR_WORKER_DIED',
    /died while running this request \(killed by SIGKILL\); it is being restarted$/,
  ],
  [
    'a child process started, then SIGKILL: the child goes too',
    608,
    500,
    'KILN_ERR_WORKER_DIED',
    /died while running this request \(killed by SIGKILL\)/,
  ],
];

describe.each([
  ['thread', 'fthread', both],
  ['process', 'fprocess', [...both, ...processOnly]],
] as const)('%s workers', (_, model, faults) => {
  test.each(faults)(
    '%s: a clear 5xx for the request in flight; the model recovers, others never notice',
    async (_, first, status, code, message) => {
      expectRefusal(await predict(model, first), status, code, message);
      await recovers(model);
    },
  );
});

describe('workers', () => {
  test('a process worker killed from outside while idle is replaced; requests then are served', async () => {
    const before = await workerPids(server().kiln);
    const [pid] = (
      (await (await fetch(`${server().kiln.management}/models/fprocess`)).json()) as { workers: { pid: number }[] }[]
    )[0]!.workers.map((w) => w.pid);
    process.kill(pid!, 'SIGKILL');
    await until(() => server().kiln.output().includes(`exited (killed by SIGKILL)`));
    await recovers('fprocess');
    expect(await workerPids(server().kiln)).not.toContain(pid);
    expect((await workerPids(server().kiln)).length).toBe(before.length);
  });

  test('a handler that throws in initialize: 500 naming the error, logged with its stack, nothing registered', async () => {
    const got = await answer(await fetch(`${server().kiln.management}/models?url=broken.mar&model_name=broken`, { method: 'POST' }));
    expectRefusal(
      got,
      500,
      'KILN_ERR_SCALE_FAILED',
      /model "broken" version 1\.0 could not start: .*the label file is missing from this archive; it was not registered/,
    );
    // Every 5xx that reaches a client is in the log, with its stack.
    expect(server().kiln.output()).toMatch(/request \S+ POST \/models failed: KILN_ERR_SCALE_FAILED: model "broken"[^\n]*\n\s+at /);
    expect((await fetch(`${server().kiln.management}/models/broken`)).status).toBe(404);
    await expectStillServing(server(), MODELS);
  });

  test('a crash loop: the backoff grows, readiness goes false, the log stays a line or two per crash', async () => {
    const kiln = server().kiln;
    const registered = await fetch(`${kiln.management}/models?url=crashloop.mar&model_name=crashloop&synchronous=false`, {
      method: 'POST',
    });
    expect(registered.status).toBe(202);
    const delays = () => [...kiln.output().matchAll(/restarting a worker of model "crashloop" in (\d+) ms/g)].map((m) => Number(m[1]));
    await until(() => delays().length >= 5, 40_000);
    expect(delays().slice(0, 5)).toEqual([250, 500, 1000, 2000, 4000]);
    // After five crashes in a row the model is not ready, and says why.
    await until(async () => (await fetch(`${kiln.inference}/v2/models/crashloop/ready`)).status === 503, 15_000);
    const ping = await answer(await fetch(`${kiln.inference}/ping`));
    expect(ping.status).toBe(500);
    expect(JSON.stringify(ping.json.problems)).toMatch(
      /crashloop 1\.0: it has no working worker: worker crashloop-1\.0-w\d+ exited \(exit code 7\)/,
    );
    const lines = kiln
      .output()
      .split('\n')
      .filter((l) => l.includes('[crashloop'));
    const crashes = lines.filter((l) => /exited \(exit code 7/.test(l)).length;
    expect(lines.length).toBeLessThanOrEqual(2 * crashes + 2);
    expect((await fetch(`${kiln.management}/models/crashloop`, { method: 'DELETE' })).status).toBe(200);
    await expectStillServing(server(), MODELS);
  }, 90_000);

  test('after all that, nothing is left: no stray process (the 608 child included), no stray file', async () => {
    await expectNothingLeft(server(), MODELS);
  });
});
