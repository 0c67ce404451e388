import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { restorePlan, SnapshotFile, type Snapshot, type SnapshotModel } from './snapshot.js';

const model = (over: Partial<SnapshotModel>): SnapshotModel => ({
  name: 'm',
  version: '1',
  source: 'startup',
  archive: '/store/m.mar',
  isDefault: true,
  minWorkers: 1,
  maxWorkers: 1,
  overrides: {},
  ...over,
});
const snapshot = (models: SnapshotModel[]): Snapshot => ({ kiln: 'snapshot', format: 1, written: '', models });

describe('restorePlan', () => {
  test('a --models archive the snapshot has gets its workers back; one under another name does not', () => {
    const saved = snapshot([model({ name: 'a', archive: '/store/a.mar', minWorkers: 3, maxWorkers: 4 })]);
    const plan = restorePlan(saved, [
      { name: 'a', path: '/store/a.mar' },
      { name: 'b', path: '/store/a.mar' },
      { name: undefined, path: '/store/./a.mar' },
    ]);
    expect(plan.startup).toEqual([{ minWorkers: 3, maxWorkers: 4 }, undefined, { minWorkers: 3, maxWorkers: 4 }]);
    expect(plan.api).toEqual([]);
  });

  test('API models are registered again, unless --models now gives the same archive; defaults are kept', () => {
    const api = model({ name: 'x', source: 'api', url: 'x.mar', archive: '/store/x.mar', isDefault: false });
    const taken = model({ name: 'y', source: 'api', url: 'y.mar', archive: '/store/y.mar' });
    const plan = restorePlan(snapshot([api, taken, model({ source: 'startup' })]), [{ name: 'y', path: '/store/y.mar' }]);
    expect(plan.api.map((m) => m.name)).toEqual(['x']);
    expect(plan.defaults).toEqual([
      { name: 'y', version: '1' },
      { name: 'm', version: '1' },
    ]);
    expect(restorePlan(undefined, [{ name: 'y', path: '/y.mar' }])).toEqual({ startup: [undefined], api: [], defaults: [] });
  });
});

describe('SnapshotFile', () => {
  test('saves made while one is being written coalesce: the file ends with the last, and nothing else is left', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'kiln-snapshot-')), 'state');
    const errors: string[] = [];
    const file = new SnapshotFile(dir, (message) => errors.push(message));
    expect(file.read()).toBeUndefined();
    await Promise.all([1, 2, 3, 4].map((n) => file.save([model({ minWorkers: n })])));
    expect(file.read()?.models[0]?.minWorkers).toBe(4);
    expect(readdirSync(dir)).toEqual(['snapshot.json']);
    expect(JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8'))).toMatchObject({ kiln: 'snapshot', format: 1 });
    expect(errors).toEqual([]);
  });

  test('a folder that cannot be written is reported, not thrown', async () => {
    const errors: string[] = [];
    const notAFolder = join(mkdtempSync(join(tmpdir(), 'kiln-snapshot-')), 'file');
    writeFileSync(notAFolder, '');
    const file = new SnapshotFile(join(notAFolder, 'state'), (message) => errors.push(message));
    await file.save([model({})]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/cannot write the snapshot .* a restart will not restore it/);
  });
});
