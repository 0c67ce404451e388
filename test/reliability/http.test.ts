import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { describe, expect, test } from 'vitest';
import { answer, catalogueServer, expectRefusal, expectStillServing, type Answer } from '../support/catalogue.js';
import { chunked, pieces, rawExchange, type RawAnswer } from '../support/raw-http.js';
import { until } from '../support/server.js';

const MB = 1024 * 1024;
const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
// Short timeouts, so the slow-client cases show them firing within their setting.
const server = catalogueServer({ args: ['--headers-timeout', '1', '--request-timeout', '3'] });

/** A raw answer as the catalogue's checks read it. */
const asAnswer = (raw: RawAnswer): Answer => ({
  status: raw.status,
  headers: new Headers(raw.headers),
  text: JSON.stringify(raw.json),
  json: raw.json,
});

const send = async (path: string, init: RequestInit = {}, api: 'inference' | 'management' = 'inference') =>
  answer(await fetch(`${server().kiln[api]}${path}`, init));

const json = (body: string): RequestInit => ({ method: 'POST', body, headers: { 'content-type': 'application/json' } });

/** Open file descriptors of the server process. */
const fds = () => readdirSync(`/proc/${server().kiln.child.pid}/fd`).length;

describe('HTTP: bodies', () => {
  test.each([
    ['/predictions/linear', 'Content-Length', 'TorchServe'],
    ['/predictions/linear', 'chunked', 'TorchServe'],
    ['/v2/models/linear/infer', 'Content-Length', 'v2'],
    ['/v2/models/linear/infer', 'chunked', 'v2'],
  ])('%s: a 10 MB body (%s, no Expect: 100-continue) gets its 413, not a reset connection', async (path, framing) => {
    const body = pieces(10 * MB);
    const head =
      framing === 'chunked'
        ? `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`
        : `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${10 * MB}\r\n\r\n`;
    const got = await rawExchange(server().kiln.inference, head, framing === 'chunked' ? chunked(body) : body);
    expect(got.error).toBeUndefined();
    expectRefusal(asAnswer(got), 413, 'KILN_ERR_REQUEST_TOO_LARGE', 'the request body is larger than maxRequestSize (6553500 bytes)');
    await expectStillServing(server());
  });

  test.each([
    [
      'v2 data',
      '/v2/models/linear/infer',
      `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":${deep(200_000)}}]}`,
      `input "x" (FP32): "data" is nested more than 32 lists deep (at value 0); send it flat`,
    ],
    [
      'a v1 instance',
      '/v1/models/linear:predict',
      `{"instances":[${deep(200_000)}]}`,
      'the JSON body nests lists or objects more than 64 levels deep',
    ],
  ])('JSON nested 200,000 deep in %s: 400, not a stack overflow', async (_, path, body, message) => {
    expectRefusal(await send(path, json(body)), 400, 'KILN_ERR_BAD_REQUEST', message);
    await expectStillServing(server());
  });

  test('JSON nested 200,000 deep on POST /models: 400, not a stack overflow', async () => {
    const got = await send('/models', json(`{"url":${deep(200_000)}}`), 'management');
    expectRefusal(got, 400, 'KILN_ERR_BAD_REQUEST', 'the JSON body nests lists or objects more than 64 levels deep; send a flatter body');
    await expectStillServing(server());
  });

  test('the wrong content type on the management API: 415 naming what it takes', async () => {
    const got = await send('/models', { method: 'POST', body: 'url=linear.mar', headers: { 'content-type': 'text/plain' } }, 'management');
    expectRefusal(
      got,
      415,
      'KILN_ERR_UNSUPPORTED_MEDIA_TYPE',
      'this API takes application/json bodies (or query parameters), received text/plain',
    );
    await expectStillServing(server());
  });

  test('Inference-Header-Content-Length in hex (0xd8): 400, not read as 216', async () => {
    const got = await send('/v2/models/linear/infer', {
      method: 'POST',
      body: '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}',
      headers: { 'inference-header-content-length': '0xd8' },
    });
    expectRefusal(got, 400, 'KILN_ERR_BAD_REQUEST', 'Inference-Header-Content-Length must be a decimal byte count, received "0xd8"');
    await expectStillServing(server());
  });

  test('clients that disconnect mid-body free their connections: the server holds no extra file descriptor', async () => {
    const before = fds();
    const sockets: Socket[] = await Promise.all(
      Array.from(
        { length: 50 },
        () =>
          new Promise<Socket>((resolve) => {
            const { port } = new URL(server().kiln.inference);
            const socket = connect(Number(port), '127.0.0.1', () => {
              socket.write(
                'POST /predictions/linear HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"row": [1,',
              );
              resolve(socket);
            });
          }),
      ),
    );
    await until(() => fds() >= before + 50);
    for (const socket of sockets) socket.destroy();
    await until(() => fds() <= before, 5_000);
    await expectStillServing(server());
  });
});

describe('HTTP: paths and methods', () => {
  test('the wrong method: 405 with Allow', async () => {
    const got = await send('/predictions/linear', { method: 'DELETE' });
    expectRefusal(got, 405, 'KILN_ERR_METHOD_NOT_ALLOWED', 'DELETE /predictions/linear takes POST, PUT');
    expect(got.headers.get('allow')).toBe('POST, PUT');
    await expectStillServing(server());
  });

  test('an unknown route: 404 naming it', async () => {
    expectRefusal(await send('/predict/linear'), 404, 'KILN_ERR_ROUTE_NOT_FOUND', 'GET /predict/linear');
    await expectStillServing(server());
  });

  test('a percent-encoded climb in the model name is a name like any other: 404', async () => {
    const got = await send('/predictions/..%2F..%2Flinear', json('{"row":[1,2,3,4]}'));
    expectRefusal(got, 404, 'KILN_ERR_MODEL_NOT_FOUND', 'Model not found: ../../linear; registered models: linear');
    await expectStillServing(server());
  });

  test('a path that is not valid percent-encoding: 400 in Kiln’s shape', async () => {
    const got = await send('/predictions/%E0%A4%A', json('{}'));
    expectRefusal(got, 400, 'KILN_ERR_BAD_HTTP', 'the path /predictions/%E0%A4%A is not valid percent-encoding');
    await expectStillServing(server());
  });

  test('a 200-character model name: 414 in Kiln’s shape', async () => {
    const got = await send(`/predictions/${'a'.repeat(200)}`, json('{}'));
    expectRefusal(got, 414, 'KILN_ERR_URI_TOO_LONG', 'is longer than 100 characters');
    await expectStillServing(server());
  });

  test('headers over 16 KiB: 431 in Kiln’s shape', async () => {
    const got = await rawExchange(server().kiln.inference, `GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expectRefusal(asAnswer(got), 431, 'KILN_ERR_HEADERS_TOO_LARGE', "the request's headers are larger than 16 KiB");
    await expectStillServing(server());
  });

  test('bytes that are not HTTP: 400 in Kiln’s shape', async () => {
    const got = await rawExchange(server().kiln.inference, 'GET /ping HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n');
    expectRefusal(asAnswer(got), 400, 'KILN_ERR_BAD_HTTP', 'the request is not valid HTTP');
    await expectStillServing(server());
  });
});

describe('HTTP: slow clients and many connections', () => {
  test('headers sent slowly: 408 within headersTimeout (1 s) and a check interval, not Node’s 30 s', async () => {
    const got = await rawExchange(server().kiln.inference, 'POST /predictions/linear HTTP/1.1\r\nHost: x\r\n', [10_000]);
    expectRefusal(asAnswer(got), 408, 'KILN_ERR_REQUEST_TIMEOUT', 'the request was not received in time');
    expect(got.ms).toBeLessThan(1_000 + 2_000);
    await expectStillServing(server());
  });

  test('a body sent slowly: 408 within requestTimeout (3 s) and a check interval', async () => {
    const head = 'POST /predictions/linear HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n';
    const got = await rawExchange(server().kiln.inference, head, [Buffer.from('{"row":'), 10_000]);
    expectRefusal(asAnswer(got), 408, 'KILN_ERR_REQUEST_TIMEOUT', 'the request was not received in time');
    expect(got.ms).toBeLessThan(3_000 + 2_000);
    await expectStillServing(server());
  });

  test('1,000 idle keep-alive connections: /ping and predictions still answer', async () => {
    const { port } = new URL(server().kiln.inference);
    const sockets = await Promise.all(
      Array.from(
        { length: 1_000 },
        () =>
          new Promise<Socket>((resolve, reject) => {
            const socket = connect(Number(port), '127.0.0.1', () => socket.write('GET /ping HTTP/1.1\r\nHost: x\r\n\r\n'));
            socket.once('data', () => resolve(socket)); // answered, and now idle on keep-alive
            socket.once('error', reject);
          }),
      ),
    );
    try {
      expect(sockets.every((s) => !s.destroyed)).toBe(true);
      const ping = await send('/ping');
      expect(ping.status).toBe(200);
      await expectStillServing(server());
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  }, 60_000);
});
