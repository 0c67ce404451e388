import { describe, expect, test } from 'vitest';
import { resolveModelConfig } from '../config/parse-model-config.js';
import type { Handler, KilnRequest } from '../handler/types.js';
import { handlerHooks } from '../runtime/hooks.js';
import type { HookName, WireRequest, WireResult } from '../runtime/wire.js';
import { describeHandler, runHandler } from '../testing/index.js';
import { createContext } from './load-model.js';
import { runBatch } from './run-batch.js';

/** A request whose JSON body is `{"n": n}`, for `hook` when given. */
function wire(n: number, hook?: HookName): WireRequest {
  const request: WireRequest = {
    id: `r${n}`,
    body: Buffer.from(JSON.stringify({ n })),
    contentType: 'application/json',
    headers: {},
    query: {},
  };
  if (hook !== undefined) request.hook = hook;
  return request;
}

const n = (request: KilnRequest) => (request.json as { n: number }).n;

/** Records every call, so a test can see which hook got which requests. */
function recordingHandler() {
  const calls: string[] = [];
  const handler: Handler = {
    handle: (requests) => {
      calls.push(`handle ${requests.map(n).join(',')}`);
      return requests.map((r) => ({ square: n(r) ** 2 }));
    },
    explain: (requests) => {
      calls.push(`explain ${requests.map(n).join(',')}`);
      return requests.map((r) => (n(r) < 0 ? new Error(`cannot explain ${n(r)}`) : { because: `${n(r)} times ${n(r)}` }));
    },
    describe: (context) => ({ model: context.modelName, calls: calls.length }),
  };
  return { handler, calls };
}

function loaded(handler: Handler) {
  const manifest = {
    createdOn: '01/01/2026 00:00:00',
    runtime: 'node' as const,
    archiverVersion: 'test',
    sdkVersion: 'test',
    model: { modelName: 'squares', modelVersion: '2', handler: 'test' },
    files: {},
  };
  return { handler, context: createContext(manifest, process.cwd(), resolveModelConfig({})) };
}

const json = (result: WireResult | undefined) =>
  result?.ok === true && result.body.kind === 'json' ? JSON.parse(result.body.text) : result;

describe('runBatch with explain and describe requests', () => {
  test('a mixed batch: predictions go to handle(), explain requests to one explain() call after it, each answer in its place', async () => {
    const { handler, calls } = recordingHandler();
    const results = await runBatch(loaded(handler), [wire(1), wire(2, 'explain'), wire(3, 'describe'), wire(4), wire(-5, 'explain')]);
    expect(calls).toEqual(['handle 1,4', 'explain 2,-5']);
    expect(json(results[0])).toEqual({ square: 1 });
    expect(json(results[1])).toEqual({ because: '2 times 2' });
    // describe() ran after handle() and before explain(): it saw one call.
    expect(json(results[2])).toEqual({ model: 'squares', calls: 1 });
    expect(json(results[3])).toEqual({ square: 16 });
    expect(results[4]).toMatchObject({
      ok: false,
      error: { code: 'KILN_ERR_HANDLER_FAILED', message: 'explain failed: cannot explain -5', phase: 'explain' },
    });
  });

  test('a handler without the hooks: explain is 501 KILN_ERR_NOT_IMPLEMENTED naming the model and the fix; predictions are answered', async () => {
    const handler: Handler = { handle: (requests) => requests.map(n) };
    expect(handlerHooks(handler)).toEqual({ explain: false, describe: false });
    const results = await runBatch(loaded(handler), [wire(7, 'explain'), wire(8), wire(9, 'describe')]);
    expect(results[0]).toEqual({
      ok: false,
      error: {
        code: 'KILN_ERR_NOT_IMPLEMENTED',
        message:
          'model "squares" version 2 cannot explain: its handler exports no explain() hook; add a method explain(requests, context) to the handler that returns one explanation per request (see docs/reference/handler-sdk.md#explain-and-describe), then archive the model again',
        phase: undefined,
        stack: expect.any(String),
      },
    });
    expect(json(results[1])).toBe(8);
    expect(results[2]).toMatchObject({ ok: false, error: { code: 'KILN_ERR_NOT_IMPLEMENTED' } });
  });

  test("explain()'s mistakes fail its requests only: a wrong count, a throw; describe() must answer an object", async () => {
    const handler: Handler = {
      handle: (requests) => requests.map(n),
      explain: (requests) => (n(requests[0]!) === 0 ? [] : Promise.reject(new Error('no gradients'))),
      describe: () => [1, 2],
    };
    const results = await runBatch(loaded(handler), [wire(0, 'explain'), wire(1), wire(2, 'explain'), wire(3, 'describe')]);
    expect(results[0]).toMatchObject({
      ok: false,
      error: {
        code: 'KILN_ERR_HANDLER_FAILED',
        message: 'explain() must return one result per request: it got 2 requests and returned 0 results',
      },
    });
    expect(results[2]).toMatchObject({ ok: false, error: { phase: 'explain' } });
    expect(json(results[1])).toBe(1);
    expect(results[3]).toMatchObject({
      ok: false,
      error: {
        code: 'KILN_ERR_HANDLER_FAILED',
        phase: 'describe',
        message: "describe failed: describe() must return a JSON object (TorchServe's customizedMetadata is one), it returned an array",
      },
    });
    const throwing = await runBatch(loaded({ ...handler, explain: () => Promise.reject(new Error('no gradients')) }), [wire(4, 'explain')]);
    expect(throwing[0]).toMatchObject({
      ok: false,
      error: { code: 'KILN_ERR_HANDLER_FAILED', message: 'explain failed: no gradients', phase: 'explain' },
    });
  });

  test('handlerHooks sees methods on a class prototype as on an object', () => {
    class WithHooks {
      handle(requests: KilnRequest[]) {
        return requests.map(() => null);
      }
      explain(requests: KilnRequest[]) {
        return requests.map(() => null);
      }
    }
    expect(handlerHooks(new WithHooks())).toEqual({ explain: true, describe: false });
    expect(handlerHooks({ handle: () => [], describe: () => ({}) })).toEqual({ explain: false, describe: true });
  });
});

describe('runHandler and describeHandler', () => {
  test('runHandler with explain: true sends the inputs to explain(); describeHandler answers describe()', async () => {
    const { handler } = recordingHandler();
    const results = await runHandler(handler, [{ json: { n: 3 } }, { json: { n: 4 } }], { explain: true, modelName: 'sq' });
    expect(results.map((r) => r.json)).toEqual([{ because: '3 times 3' }, { because: '4 times 4' }]);
    // The same handler object: describe() sees the one explain() call before it, and no handle().
    expect(await describeHandler(handler, { modelName: 'sq' })).toMatchObject({ ok: true, status: 200, json: { model: 'sq', calls: 1 } });
    const none = await describeHandler({ handle: () => [] });
    expect(none).toMatchObject({ ok: false, status: 501, error: { code: 'KILN_ERR_NOT_IMPLEMENTED' } });
  });
});
