import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, test } from 'vitest';
import { kiln, tempDir } from '../support/kiln.js';
import { linearArchive, post, startKiln } from '../support/server.js';

/** Entries of the system's temporary folder that start with `prefix`: where a name that climbs out of the work folder lands. */
const escaped = (prefix: string) => readdirSync(tmpdir()).filter((entry) => entry.startsWith(prefix));

describe('model names are checked wherever they enter', () => {
  test('--models with a name that climbs out of the work folder stops the server before it listens, writing nothing', () => {
    const dir = tempDir();
    const archive = linearArchive(dir, 'linear', 'batchSize: 1\n');
    const prefix = `kiln-escape-${randomBytes(4).toString('hex')}`;
    const run = kiln(['serve', '--models', `../../${prefix}=${archive}`, '--inference-address', 'http://127.0.0.1:0']);
    // A malformed flag: a usage error, as for kiln archive --model-name.
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('KILN_ERR_INVALID_MODEL_NAME');
    expect(run.stderr).toContain(`--models ../../${prefix}=${archive}: the name "../../${prefix}" is not allowed`);
    expect(run.stdout).not.toContain('listening');
    expect(escaped(prefix)).toEqual([]);
  });

  test.each([
    ['a climbing name, percent-encoded', (prefix: string) => `..%2F..%2F${prefix}`, (prefix: string) => `../../${prefix}`],
    ['a name with a newline', (prefix: string) => `${prefix}%0Aforged-log-line`, (prefix: string) => `${prefix}\\nforged-log-line`],
    ['a name starting with a dot', (prefix: string) => `.${prefix}`, (prefix: string) => `.${prefix}`],
  ])('register with %s: 400 KILN_ERR_INVALID_MODEL_NAME, nothing unpacked, the server still serves', async (_, sent, shown) => {
    const dir = tempDir();
    linearArchive(dir, 'linear', 'batchSize: 1\n');
    const server = await startKiln(['--model-store', 'store', '--models', 'linear=linear.mar', '--enable-model-api'], { cwd: dir });
    const prefix = `kiln-escape-${randomBytes(4).toString('hex')}`;
    const response = await fetch(`${server.management}/models?url=linear.mar&model_name=${sent(prefix)}`, { method: 'POST' });
    const body = (await response.json()) as { errorCode: string; message: string };
    expect(response.status).toBe(400);
    expect(body.errorCode).toBe('KILN_ERR_INVALID_MODEL_NAME');
    expect(body.message).toContain(`model_name "${shown(prefix)}" is not allowed`);
    expect(escaped(prefix.replace(/^\./, ''))).toEqual([]);
    expect(escaped(`.${prefix}`)).toEqual([]);
    expect((await post(`${server.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).status).toBe(200);
    const models = (await (await fetch(`${server.management}/models`)).json()) as { models: { modelName: string }[] };
    expect(models.models.map((m) => m.modelName)).toEqual(['linear']);
  });
});
