import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { linearModel } from '../support/onnx-models.js';
import { archiveModel, post, startKiln, type RunningKiln } from '../support/server.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let server: RunningKiln;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-mistakes-'));
  const archive = archiveModel(dir, { name: 'mistakes', model: linearModel(), handler: 'handler-mistakes', config: 'batchSize: 1\n' });
  server = await startKiln(['--models', `mistakes=${archive}`], { shared: true });
});

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a handler’s mistakes are answered as the handler’s, named: 500 KILN_ERR_HANDLER_FAILED, never KILN_ERR_INTERNAL', () => {
  test.each([
    ['returns a function', 'function', 'the handler returned a function where a JSON value was expected'],
    ['returns a Symbol', 'symbol', 'the handler returned a symbol (Symbol(answer)) where a JSON value was expected'],
    ['returns a Map (which JSON would make {})', 'map', 'the handler returned a Map, which JSON would turn into {}; return a plain object'],
    ['puts a function inside its answer', 'nested-function', 'the handler returned a function where a JSON value was expected'],
    ['answers with status 999', 'status', 'HandlerResponse status must be a whole number from 200 to 599, received 999'],
    ['sets a header value with CRLF', 'crlf', 'HandlerResponse header x-note must be a string without CR, LF or NUL'],
  ])('a handler that %s', async (_, mistake, message) => {
    const response = await post(`${server.inference}/predictions/mistakes`, { mistake });
    expect(response.status).toBe(500);
    expect(response.json).toMatchObject({ errorCode: 'KILN_ERR_HANDLER_FAILED' });
    expect(String(response.json.message)).toContain(message);
    expect(response.headers.get('set-cookie')).toBeNull();
    expect(server.output()).not.toContain('KILN_ERR_INTERNAL');
    expect((await post(`${server.inference}/predictions/mistakes`, { mistake: 'none' })).json).toEqual({ ok: true });
  });
});
