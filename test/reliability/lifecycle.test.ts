import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { filesUnder, processesUsing } from '../support/hygiene.js';
import { tempDir } from '../support/kiln.js';
import { linearArchive, post, startKiln, until } from '../support/server.js';

describe('lifecycle', () => {
  test('a server killed with SIGKILL: its idle process workers exit by themselves, and the next server removes its work folder', async () => {
    const dir = tempDir();
    const scratch = tempDir('kiln-tmpdir-');
    const archive = linearArchive(dir, 'linear', 'batchSize: 1\nisolation: process\nminWorkers: 2\n');
    const first = await startKiln(['--models', `linear=${archive}`], { env: { TMPDIR: scratch } });
    expect(processesUsing(scratch).length).toBe(3); // the server and its two workers
    const left = readdirSync(scratch).filter((f) => f.startsWith('kiln-server-'));
    expect(left).toHaveLength(1);
    expect(await first.stop('SIGKILL')).toBe(null);
    // Nothing could clean up: the folder stays, and the workers go when their socket closes.
    await until(() => processesUsing(scratch).length === 0, 10_000);
    expect(existsSync(join(scratch, left[0]!, 'server.pid'))).toBe(true);

    const second = await startKiln(['--models', `linear=${archive}`], { env: { TMPDIR: scratch } });
    await until(() => !existsSync(join(scratch, left[0]!)));
    // The line comes once every folder is looked at; it may reach the pipe a moment after.
    await until(() => second.output().includes('removed 1 work folder'));
    expect(second.output()).toContain(`removed 1 work folder(s) left by servers that were killed: ${left[0]}`);
    expect((await post(`${second.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).status).toBe(200);
    expect(await second.stop('SIGTERM')).toBe(0);
    await until(() => processesUsing(scratch).length === 0, 10_000);
    expect(filesUnder(scratch)).toEqual([]);
  });

  test('a server killed with SIGKILL while a process worker spins in an endless loop: the worker dies with it', async () => {
    const dir = tempDir();
    const scratch = tempDir('kiln-tmpdir-');
    const archive = linearArchive(dir, 'faulty', 'batchSize: 1\nisolation: process\nresponseTimeout: 600\n');
    const kiln = await startKiln(['--models', `faulty=${archive}`], { env: { TMPDIR: scratch } });
    // Row 610 spins forever: the worker's thread never turns its event loop again.
    void fetch(`${kiln.inference}/predictions/faulty`, {
      method: 'POST',
      body: JSON.stringify({ row: [610, 0, 0, 0] }),
      headers: { 'content-type': 'application/json' },
    }).catch(() => {});
    const worker = processesUsing(scratch).find((pid) => pid !== kiln.child.pid)!;
    await until(() => Number(readFileSync(`/proc/${worker}/stat`, 'utf8').split(') ')[1]!.split(' ')[11]) > 50); // it is spinning (utime)
    expect(await kiln.stop('SIGKILL')).toBe(null);
    await until(() => processesUsing(scratch).length === 0, 5_000);
  });

  test("a running server's work folder is never taken for a stale one", async () => {
    const dir = tempDir();
    const scratch = tempDir('kiln-tmpdir-');
    const archive = linearArchive(dir, 'linear', 'batchSize: 1\n');
    const first = await startKiln(['--models', `linear=${archive}`], { env: { TMPDIR: scratch } });
    const second = await startKiln(['--models', `linear=${archive}`], { env: { TMPDIR: scratch } });
    expect(second.output()).not.toContain('removed');
    expect(readdirSync(scratch).filter((f) => f.startsWith('kiln-server-'))).toHaveLength(2);
    for (const server of [first, second])
      expect((await post(`${server.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).status).toBe(200);
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(await second.stop('SIGTERM')).toBe(0);
    expect(filesUnder(scratch)).toEqual([]);
  });
});
