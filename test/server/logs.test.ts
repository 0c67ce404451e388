import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { linearExpected } from '../support/onnx-models.js';
import { linearArchive, post, startKiln, until } from '../support/server.js';

// The server's logs as an operator reads them: JSON lines on stdout, model lines tagged with their
// worker, handler fields kept, levels honoured, and an access log with one line per request that
// never holds a body or a header value.

const TOKEN = 'a-secret-token-of-some-length';
const SECRET = 'body-secret-7f3a9c';
const auth = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` };

type Line = Record<string, unknown>;
const jsonLines = (text: string): Line[] =>
  text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Line);

describe('access log and JSON logs', () => {
  test('one access-log line per request, with its fields; no body, token or query in any log', async () => {
    const dir = tempDir();
    const accessFile = join(dir, 'logs', 'access.jsonl');
    const archive = linearArchive(dir, 'chatty', 'batchSize: 1\n');
    const kiln = await startKiln(
      [
        '--models',
        `linear=${archive}`,
        '--log-format',
        'json',
        '--log-level',
        'debug',
        '--access-log',
        accessFile,
        '--max-request-size',
        '2000',
      ],
      { env: { KILN_TOKEN: TOKEN } },
    );

    const sent: { status: number; id: string | null; bytesIn: number; bytesOut: number }[] = [];
    const send = async (path: string, body: string) => {
      const response = await fetch(`${kiln.inference}${path}`, { method: 'POST', body, headers: auth });
      const text = await response.text();
      sent.push({
        status: response.status,
        id: response.headers.get('x-request-id'),
        bytesIn: Buffer.byteLength(body),
        bytesOut: Buffer.byteLength(text),
      });
    };
    await send('/predictions/linear?secret=query-secret', JSON.stringify({ row: [1, 2, 3, 4], note: SECRET }));
    await send('/predictions/linear', JSON.stringify({ row: [4, 3, 2, 1], note: SECRET }));
    await send('/predictions/nosuchmodel', JSON.stringify({ row: [1, 2, 3, 4], note: SECRET }));
    await send('/predictions/linear', JSON.stringify({ row: [1, 2, 3, 4], pad: `${SECRET}${'x'.repeat(3000)}` }));
    const unauthorized = await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] });
    expect(sent.map((s) => s.status)).toEqual([200, 200, 404, 413]);
    expect(unauthorized.status).toBe(401);

    await until(() => existsSync(accessFile) && readFileSync(accessFile, 'utf8').split('\n').length > 5);
    expect(await kiln.stop()).toBe(0);
    const access = jsonLines(readFileSync(accessFile, 'utf8'));
    expect(access).toHaveLength(5);
    access.slice(0, 4).forEach((line, i) => {
      expect(line.requestId).toBe(sent[i]!.id);
      expect(line).toMatchObject({ method: 'POST', remoteAddress: '127.0.0.1', status: sent[i]!.status, bytesIn: sent[i]!.bytesIn });
      expect(Date.now() - Date.parse(String(line.time))).toBeLessThan(60_000);
      expect(line.totalMs).toBeGreaterThan(0);
    });
    expect(access[0]).toMatchObject({
      path: '/predictions/linear',
      model: 'linear',
      version: '1.0',
      batchSize: 1,
      bytesOut: sent[0]!.bytesOut,
    });
    expect(access[0]!.queueMs).toBeGreaterThanOrEqual(0);
    expect(access[0]!.errorCode).toBeUndefined();
    expect(access[2]).toMatchObject({ path: '/predictions/nosuchmodel', errorCode: 'KILN_ERR_MODEL_NOT_FOUND' });
    expect(access[2]!.model).toBeUndefined();
    expect(access[2]!.queueMs).toBeUndefined();
    expect(access[3]).toMatchObject({ model: 'linear', status: 413, errorCode: 'KILN_ERR_REQUEST_TOO_LARGE' });
    expect(access[4]).toMatchObject({ status: 401, errorCode: 'KILN_ERR_UNAUTHORIZED' });

    // Nothing a client sent beyond the path reaches any log.
    const everything = `${kiln.output()}\n${readFileSync(accessFile, 'utf8')}`;
    for (const secret of [SECRET, TOKEN, 'query-secret']) expect(everything).not.toContain(secret);
  });

  test("server and model lines are JSON; a handler's fields are kept, its debug lines shown at --log-level debug", async () => {
    const dir = tempDir();
    const kiln = await startKiln([
      '--models',
      `linear=${linearArchive(dir, 'chatty', 'batchSize: 1\n')}`,
      '--log-format',
      'json',
      '--log-level',
      'debug',
    ]);
    const answer = await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] });
    expect(answer.json).toMatchObject({ y: linearExpected([1, 2, 3, 4]).map(Math.fround) });
    await until(() => kiln.output().includes('rows are logged at warn too'));
    await kiln.stop();
    const lines = jsonLines(kiln.output());
    for (const line of lines) {
      expect(['debug', 'info', 'warn', 'error']).toContain(line.level);
      expect(typeof line.msg).toBe('string');
      expect(Number.isNaN(Date.parse(String(line.time)))).toBe(false);
    }
    expect(lines.find((l) => l.msg === 'Kiln is ready: 1 model serving')).toMatchObject({ level: 'info' });
    const worker = 'linear-1.0-w0';
    expect(lines.find((l) => l.msg === 'loaded')).toMatchObject({ level: 'info', log: 'model', model: 'linear', worker, answer: 42 });
    expect(lines.find((l) => l.msg === 'loaded, in detail')).toMatchObject({ level: 'debug', log: 'model', worker, inputs: 1 });
    expect(lines.find((l) => l.msg === 'a row arrived')).toMatchObject({ level: 'debug', worker, values: 4 });
    expect(lines.find((l) => l.msg === 'rows are logged at warn too')).toMatchObject({
      level: 'warn',
      worker,
      request: answer.headers.get('x-request-id'),
    });
  });

  test('at the default level, debug lines are dropped and the rest kept', async () => {
    const kiln = await startKiln(['--models', `linear=${linearArchive(tempDir(), 'chatty', 'batchSize: 1\n')}`, '--log-format', 'json']);
    await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] });
    await until(() => kiln.output().includes('rows are logged at warn too'));
    await kiln.stop();
    const lines = jsonLines(kiln.output());
    expect(lines.filter((l) => l.level === 'debug')).toEqual([]);
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['loaded', 'rows are logged at warn too']));
  });

  test('--log-dir: the server log also goes to kiln.log, a model log to models/<name>.log and not to stdout', async () => {
    const dir = tempDir();
    const logDir = join(dir, 'logs');
    const kiln = await startKiln([
      '--models',
      `linear=${linearArchive(dir, 'chatty', 'batchSize: 1\n')}`,
      '--log-format',
      'json',
      '--log-dir',
      logDir,
    ]);
    await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] });
    await until(
      () =>
        existsSync(join(logDir, 'models', 'linear.log')) && readFileSync(join(logDir, 'models', 'linear.log'), 'utf8').includes('warn too'),
    );
    await kiln.stop();
    const server = jsonLines(readFileSync(join(logDir, 'kiln.log'), 'utf8')).map((l) => l.msg);
    expect(server).toEqual(expect.arrayContaining(['Kiln is ready: 1 model serving', 'stopped']));
    const model = jsonLines(readFileSync(join(logDir, 'models', 'linear.log'), 'utf8'));
    expect(model.find((l) => l.msg === 'loaded')).toMatchObject({ model: 'linear', worker: 'linear-1.0-w0', answer: 42 });
    expect(kiln.output()).not.toContain('"log":"model"');
    expect(kiln.output()).toContain('Kiln is ready');
  });

  test('pretty: a time, a level and the message; model lines say which worker', async () => {
    const kiln = await startKiln(['--models', `linear=${linearArchive(tempDir(), 'chatty', 'batchSize: 1\n')}`, '--log-format', 'pretty']);
    await kiln.stop();
    expect(kiln.output()).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: Kiln is ready: 1 model serving$/m);
    expect(kiln.output()).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: \[linear linear-1\.0-w0\] loaded \{"answer":42\}$/m);
  });
});
