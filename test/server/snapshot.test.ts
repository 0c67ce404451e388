import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { linearExpected } from '../support/onnx-models.js';
import { linearArchive, post, startKiln, type RunningKiln } from '../support/server.js';

const y = (row: number[]) => linearExpected(row).map(Math.fround);

interface Described {
  modelVersion: string;
  isDefault: boolean;
  minWorkers: number;
  maxWorkers: number;
  batchSize: number;
  workers: unknown[];
}

async function call(method: string, url: string): Promise<{ status: number; json: unknown }> {
  const response = await fetch(url, { method });
  return { status: response.status, json: await response.json() };
}

async function describeAll(kiln: RunningKiln, name: string): Promise<Described[]> {
  const answer = await call('GET', `${kiln.management}/models/${name}/all`);
  expect(answer.status).toBe(200);
  return answer.json as Described[];
}

interface SnapshotOnDisk {
  kiln: string;
  models: { name: string; version: string; source: string; url?: string; isDefault: boolean; minWorkers: number; maxWorkers: number }[];
}

/** A model store with linear 1.0 and 2.0 and alpha; the servers run in `dir`, so their state is dir/.kiln. */
function project(): string {
  const dir = tempDir();
  linearArchive(dir, 'linear', 'batchSize: 1\n', 'linear', '1.0');
  linearArchive(dir, 'linear', 'batchSize: 1\n', 'linear-two', '2.0');
  linearArchive(dir, 'linear', 'batchSize: 1\n', 'alpha', '1');
  return dir;
}

const args = ['--model-store', 'store', '--models', 'linear=linear.mar', '--enable-model-api'];
// The tests' servers run with KILN_SNAPSHOT=false (vitest.config.ts); these run with the default.
const defaults = { KILN_SNAPSHOT: '' };

describe('snapshot', () => {
  test('what the management API changed is written to .kiln/snapshot.json and restored at the next start', async () => {
    const dir = project();
    const first = await startKiln(args, { cwd: dir, env: defaults });
    expect((await call('POST', `${first.management}/models?url=alpha.mar&batch_size=2&max_batch_delay=5`)).status).toBe(200);
    expect((await call('POST', `${first.management}/models?url=linear-two.mar&model_name=linear`)).status).toBe(200);
    expect((await call('PUT', `${first.management}/models/linear/2.0/set-default`)).status).toBe(200);
    expect((await call('PUT', `${first.management}/models/linear/1.0?min_worker=2&max_worker=3&synchronous=true`)).status).toBe(200);

    const file = join(dir, '.kiln', 'snapshot.json');
    const written = JSON.parse(readFileSync(file, 'utf8')) as SnapshotOnDisk;
    expect(written.kiln).toBe('snapshot');
    expect(written.models).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'linear', version: '1.0', source: 'startup', isDefault: false, minWorkers: 2, maxWorkers: 3 }),
        expect.objectContaining({ name: 'linear', version: '2.0', source: 'api', url: 'linear-two.mar', isDefault: true }),
        expect.objectContaining({ name: 'alpha', version: '1', source: 'api', url: 'alpha.mar', isDefault: true }),
      ]),
    );
    expect(written.models).toHaveLength(3);
    // Written whole, through a temporary file that is renamed: nothing else is left in the folder.
    expect(readdirSync(join(dir, '.kiln'))).toEqual(['snapshot.json']);
    expect(await first.stop()).toBe(0);

    // The same command line again: the registered models are back, as they were.
    const second = await startKiln(args, { cwd: dir, env: defaults });
    expect(second.output()).toContain(`restoring the management API's changes from ${file}`);
    const linear = await describeAll(second, 'linear');
    expect(linear.map((v) => [v.modelVersion, v.isDefault, v.minWorkers, v.maxWorkers, v.workers.length])).toEqual(
      expect.arrayContaining([
        ['1.0', false, 2, 3, 2],
        ['2.0', true, 1, 1, 1],
      ]),
    );
    const [alpha] = await describeAll(second, 'alpha');
    expect(alpha).toMatchObject({ batchSize: 2, workers: [expect.anything()] });
    expect((await post(`${second.inference}/predictions/alpha`, { row: [1, 2, 3, 4] })).json).toMatchObject({ y: y([1, 2, 3, 4]) });
    expect((await post(`${second.inference}/predictions/linear/1.0`, { row: [2, 0, 2, 0] })).json).toMatchObject({ y: y([2, 0, 2, 0]) });

    // Unregistering is a change too: alpha is not restored after this.
    expect((await call('DELETE', `${second.management}/models/alpha`)).status).toBe(200);
    expect(await second.stop()).toBe(0);
    const third = await startKiln(args, { cwd: dir, env: defaults });
    expect((await call('GET', `${third.management}/models/alpha`)).status).toBe(404);
    expect((await describeAll(third, 'linear')).map((v) => v.modelVersion).sort()).toEqual(['1.0', '2.0']);
  });

  test('--no-snapshot neither restores nor writes; an unreadable snapshot is a warning, and a gone archive is skipped', async () => {
    const dir = project();
    const first = await startKiln(args, { cwd: dir, env: defaults });
    expect((await call('POST', `${first.management}/models?url=alpha.mar`)).status).toBe(200);
    expect((await call('PUT', `${first.management}/models/linear?min_worker=2&synchronous=true`)).status).toBe(200);
    await first.stop();
    const file = join(dir, '.kiln', 'snapshot.json');
    const before = readFileSync(file, 'utf8');

    const bare = await startKiln([...args, '--no-snapshot'], { cwd: dir, env: defaults });
    expect((await call('GET', `${bare.management}/models/alpha`)).status).toBe(404);
    expect((await describeAll(bare, 'linear'))[0]!.workers).toHaveLength(1);
    expect((await call('PUT', `${bare.management}/models/linear?min_worker=3&synchronous=true`)).status).toBe(200);
    expect(readFileSync(file, 'utf8')).toBe(before);
    await bare.stop();

    // KILN_SNAPSHOT=false is the same as --no-snapshot.
    const byEnv = await startKiln(args, { cwd: dir, env: { KILN_SNAPSHOT: 'false' } });
    expect((await call('GET', `${byEnv.management}/models/alpha`)).status).toBe(404);
    await byEnv.stop();

    // alpha's archive is gone: the server starts without it, and says why.
    rmSync(join(dir, 'store', 'alpha.mar'));
    const gone = await startKiln(args, { cwd: dir, env: defaults });
    expect(gone.output()).toMatch(/model alpha 1 from the snapshot \(url alpha\.mar\) was not restored: url "alpha\.mar": no such archive/);
    expect((await describeAll(gone, 'linear'))[0]!.workers).toHaveLength(2);
    await gone.stop();

    writeFileSync(file, '{"models": ');
    const broken = await startKiln(args, { cwd: dir, env: defaults });
    expect(broken.output()).toMatch(/ignoring the snapshot .*snapshot\.json: .*it will be replaced at the next change/);
    expect((await describeAll(broken, 'linear'))[0]!.workers).toHaveLength(1);
    expect(existsSync(file)).toBe(true);
  });
});
