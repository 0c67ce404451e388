import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { linearArchive, post, startKiln } from '../support/server.js';

const TOKEN = 'a3f1c9e07b2d48e6a5c4b3a291f0e8d7';

describe('security defaults', () => {
  test('binding beyond loopback without a token prints a loud warning', async () => {
    const kiln = await startKiln(['--metrics-address', 'http://0.0.0.0:0'], { cwd: tempDir() });
    expect(kiln.output()).toContain('WARNING: the metrics API listens on 0.0.0.0, beyond this machine, with no token.');
  });

  test('token auth: 401 with WWW-Authenticate in each protocol shape; the right token passes', async () => {
    const dir = tempDir();
    const archive = linearArchive(dir, 'linear', 'batchSize: 1\n');
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    const kiln = await startKiln(['--models', `linear=${archive}`, '--token-file', 'token'], { cwd: dir });
    expect(kiln.output()).toMatch(/inference API listening on \S+ \(token required\)/);

    const none = await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="kiln", Basic realm="kiln", charset="UTF-8"');
    expect(none.json).toEqual({
      code: 401,
      type: 'InvalidKeyException',
      message: 'this API needs a token: send Authorization: Bearer <token> (a browser may give it as the password)',
      errorCode: 'KILN_ERR_UNAUTHORIZED',
    });

    const wrong = await post(
      `${kiln.inference}/predictions/linear`,
      { row: [1, 2, 3, 4] },
      { 'content-type': 'application/json', authorization: `Bearer ${TOKEN.slice(0, -1)}x` },
    );
    expect(wrong.status).toBe(401);
    expect(wrong.json.message).toBe('the token in Authorization does not match');

    const v2 = await fetch(`${kiln.inference}/v2/models/linear`);
    expect(v2.status).toBe(401);
    expect(await v2.json()).toEqual({
      error: 'this API needs a token: send Authorization: Bearer <token> (a browser may give it as the password)',
      errorCode: 'KILN_ERR_UNAUTHORIZED',
    });

    const ok = await post(
      `${kiln.inference}/predictions/linear`,
      { row: [1, 2, 3, 4] },
      { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    );
    expect(ok.status).toBe(200);
    expect((await fetch(`${kiln.management}/models`)).status).toBe(401);
    expect((await fetch(`${kiln.management}/models`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    // What a browser sends once it has asked for a password: Basic, any user, the token as password.
    const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` });
    expect((await fetch(`${kiln.management}/status`, { headers: basic(TOKEN) })).status).toBe(200);
    const wrongBasic = await fetch(`${kiln.management}/status`, { headers: basic(`${TOKEN}x`) });
    expect(wrongBasic.status).toBe(401);
    expect(((await wrongBasic.json()) as { message: string }).message).toBe('the token in Authorization does not match');
    expect((await fetch(`${kiln.management}/`)).status).toBe(401); // the status page is protected too
    expect((await fetch(`${kiln.metrics}/metrics`)).status).toBe(200); // not protected unless listed in authApis
  });

  test('KILN_TOKEN and --auth-apis choose the token and what it protects; a short token is refused', async () => {
    const kiln = await startKiln(['--auth-apis', 'metrics'], { cwd: tempDir(), env: { KILN_TOKEN: TOKEN } });
    expect((await fetch(`${kiln.metrics}/metrics`)).status).toBe(401);
    expect((await fetch(`${kiln.inference}/ping`)).status).toBe(200);
    await expect(startKiln([], { cwd: tempDir(), env: { KILN_TOKEN: 'short' } })).rejects.toThrow(
      /the auth token must be at least 16 characters/,
    );
  });

  test('CORS is off unless origins are configured, then only for those origins', async () => {
    const preflight = (url: string, origin: string) =>
      fetch(`${url}/ping`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET' } });
    const closed = await startKiln([], { cwd: tempDir() });
    expect((await preflight(closed.inference, 'https://app.example')).headers.get('access-control-allow-origin')).toBeNull();
    expect(
      (await fetch(`${closed.inference}/ping`, { headers: { origin: 'https://app.example' } })).headers.get('access-control-allow-origin'),
    ).toBeNull();

    const open = await startKiln(['--cors-allowed-origins', 'https://app.example'], { cwd: tempDir() });
    expect((await preflight(open.inference, 'https://app.example')).headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(
      (await fetch(`${open.inference}/ping`, { headers: { origin: 'https://evil.example' } })).headers.get('access-control-allow-origin'),
    ).toBeNull();
  });
});

/** The parts of an OpenAPI 3 description these tests read. */
interface OpenApi {
  openapi: string;
  info: { title: string };
  paths: Record<string, Record<string, { parameters?: { name: string; in: string; schema: { type: string; minimum?: number } }[] }>>;
}

describe('OpenAPI', () => {
  test('each API describes itself at GET /openapi.json and OPTIONS /, from the schemas that validate requests', async () => {
    const kiln = await startKiln([], { cwd: tempDir() });
    const management = (await (await fetch(`${kiln.management}/openapi.json`)).json()) as OpenApi;
    expect(management.openapi).toBe('3.0.3');
    expect(management.info.title).toBe('Kiln management API');
    expect(Object.keys(management.paths)).toEqual(
      expect.arrayContaining([
        '/models',
        '/models/{model_name}',
        '/models/{model_name}/{version}',
        '/models/{model_name}/{version}/set-default',
      ]),
    );
    const scale = management.paths['/models/{model_name}']?.put?.parameters ?? [];
    expect(scale.find((p) => p.name === 'min_worker')).toMatchObject({ in: 'query', schema: { type: 'integer', minimum: 0 } });
    // The same schema refuses what it describes as invalid.
    const refused = await fetch(`${kiln.management}/models/any?min_worker=-1`, { method: 'PUT' });
    expect(refused.status).toBe(400);

    const options = await (await fetch(`${kiln.management}/`, { method: 'OPTIONS' })).json();
    expect(options).toEqual(management);

    const inference = (await (await fetch(`${kiln.inference}/openapi.json`)).json()) as OpenApi;
    expect(Object.keys(inference.paths)).toEqual(
      expect.arrayContaining(['/ping', '/predictions/{model}', '/v2/models/{model}/infer', '/v2/health/ready', '/v1/models/{target}']),
    );
    expect(Object.keys(((await (await fetch(`${kiln.metrics}/openapi.json`)).json()) as OpenApi).paths)).toEqual(['/metrics']);
  });
});
