import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { linearExpected } from '../support/onnx-models.js';
import { linearArchive, post, startKiln } from '../support/server.js';

const y = (row: number[]) => linearExpected(row).map(Math.fround);
const TOKEN = 'probe-test-token-0123456789abcdef';

describe('health routes, probes and readiness', () => {
  test('--health-auth off opens /ping, /v2/health/live and /v2/health/ready, and nothing else', async () => {
    const dir = tempDir();
    linearArchive(dir, 'linear', 'batchSize: 1\n');
    const kiln = await startKiln(['--model-store', 'store', '--models', 'linear=linear.mar', '--health-auth', 'off'], {
      cwd: dir,
      env: { KILN_TOKEN: TOKEN },
    });
    expect(kiln.output()).toContain(
      'auth: the token from KILN_TOKEN guards the inference, management APIs; /ping, /v2/health/live and /v2/health/ready answer without it (--health-auth off)',
    );
    for (const path of ['/ping', '/ping/', '/v2/health/live', '/v2/health/ready', '/v2/health/ready?x=1']) {
      expect((await fetch(`${kiln.inference}${path}`)).status, path).toBe(200);
    }
    for (const path of ['/v2/models/linear/ready', '/v2/models/linear', '/v2', '/v1/models', '/ping/more', '/api-description']) {
      expect((await fetch(`${kiln.inference}${path}`)).status, path).toBe(401);
    }
    expect((await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).status).toBe(401);
    const authorized = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` };
    expect((await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] }, authorized)).json).toMatchObject({
      y: y([1, 2, 3, 4]),
    });
    // The management API keeps its token whatever --health-auth says.
    expect((await fetch(`${kiln.management}/models`)).status).toBe(401);
  });

  test('by default the token guards the health routes too, and the startup line names the token file', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    const kiln = await startKiln(['--token-file', 'token'], { cwd: dir });
    expect(kiln.output()).toContain(
      `auth: the token from the file ${join(dir, 'token')} (--token-file) guards the inference, management APIs\n`,
    );
    expect((await fetch(`${kiln.inference}/ping`)).status).toBe(401);
    expect((await fetch(`${kiln.inference}/v2/health/ready`)).status).toBe(401);
    expect((await fetch(`${kiln.inference}/ping`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });

  test('/v2/health/ready and /ping stay unready until a slow model has loaded, and the first ready answer can be served', async () => {
    const dir = tempDir();
    linearArchive(dir, 'initialize-3s', 'batchSize: 1\n', 'slow');
    const kiln = await startKiln(['--model-store', 'store', '--models', 'slow=slow.mar'], { cwd: dir, waitFor: /metrics API listening/ });
    const seen: number[] = [];
    for (;;) {
      const ready = await fetch(`${kiln.inference}/v2/health/ready`);
      const ping = await fetch(`${kiln.inference}/ping`);
      // The two answer from the same check: never one ready and the other not (except across the instant between them).
      seen.push(ready.status);
      if (ready.status === 200) {
        // Ready means served: the very next request is answered by the model, not refused as loading.
        expect((await post(`${kiln.inference}/predictions/slow`, { row: [1, 0, 0, 1] })).json).toMatchObject({ y: y([1, 0, 0, 1]) });
        expect((await fetch(`${kiln.inference}/ping`)).status).toBe(200);
        break;
      }
      expect(ping.status).toBe(500);
      expect(((await ping.json()) as { problems: string[] }).problems.join()).toMatch(/still loading/);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Unready at first (the APIs start listening while the model loads), and ready only once it loaded.
    expect(seen[0]).toBe(503);
    expect(seen.filter((s) => s === 503).length).toBeGreaterThan(3);
  });
});
