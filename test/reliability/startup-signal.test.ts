import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, test } from 'vitest';
import { filesUnder, processesUsing } from '../support/hygiene.js';
import { KILN_BIN, tempDir } from '../support/kiln.js';
import { linearArchive, until } from '../support/server.js';

/**
 * A server told to stop while its models are still loading stops them too: it exits 0, no worker
 * outlives it, and its work folder is gone. The model takes 30 s to initialize, so each signal
 * lands while it loads.
 */
describe.each(['thread', 'process'] as const)('SIGTERM during start-up, %s workers', (isolation) => {
  test.each([
    ['as soon as the first worker exists', /.^/],
    ['once the APIs listen, while initialize() runs', /inference API listening/],
  ])('%s: exit 0, "stopped", no worker left, nothing on disk', async (_, after) => {
    const dir = tempDir();
    const scratch = tempDir('kiln-tmpdir-'); // the server's TMPDIR: its work folder, and a mark on each worker
    const archive = linearArchive(dir, 'slow-initialize', `isolation: ${isolation}\nminWorkers: 2\n`);
    const child = spawn(
      process.execPath,
      [
        KILN_BIN,
        'serve',
        '--models',
        `slow=${archive}`,
        ...['inference', 'management', 'metrics'].flatMap((api) => [`--${api}-address`, 'http://127.0.0.1:0']),
      ],
      { env: { ...process.env, TMPDIR: scratch }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = once(child, 'exit');
    // The server's own process counts once; a process worker, or the work folder, shows it is loading.
    const loading = () =>
      (isolation === 'process' ? processesUsing(scratch).length > 1 : filesUnder(scratch).some((f) => /\/models\/slow-/.test(f))) &&
      (after.source === '.^' || after.test(output));
    await until(loading, 20_000);
    child.kill('SIGTERM');
    const [code, signal] = (await Promise.race([exited, new Promise((r) => setTimeout(() => r(['still running']), 20_000))])) as unknown[];
    if (child.exitCode === null) child.kill('SIGKILL');
    expect({ code, signal }, output).toEqual({ code: 0, signal: null });
    expect(output).toContain('received SIGTERM');
    expect(output).toMatch(/ INFO: stopped\n/);
    expect(output).not.toContain('Kiln is ready');
    expect(output).not.toContain('restarting a worker');
    await until(() => processesUsing(scratch).length === 0, 5_000);
    expect(filesUnder(scratch)).toEqual([]);
  });
});
