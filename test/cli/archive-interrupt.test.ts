import { existsSync, mkdirSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { spawnKiln, tempDir } from '../support/kiln.js';
import { makeProject, PROJECT_ARGS } from '../support/project.js';

test('an interrupted archive run leaves neither an archive nor a temporary file', async () => {
  const dir = makeProject(tempDir());
  // A sparse 4 GiB file: large enough that the run is still writing when it is interrupted.
  const big = join(dir, 'big.bin');
  writeFileSync(big, '');
  truncateSync(big, 4 * 1024 ** 3);
  mkdirSync(join(dir, 'out'));
  const child = spawnKiln(['archive', ...PROJECT_ARGS, '--archive-format', 'zip-store', '--extra-files', 'big.bin'], { cwd: dir });
  const exited = once(child, 'exit');

  const deadline = Date.now() + 20_000;
  while (readdirSync(join(dir, 'out')).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(readdirSync(join(dir, 'out'))[0]).toMatch(/^\.linear\.mar\.tmp-/); // it was writing
  child.kill('SIGINT');
  const [code] = await exited;

  expect(code).toBe(130);
  expect(readdirSync(join(dir, 'out'))).toEqual([]);
  expect(existsSync(join(dir, 'out/linear.mar'))).toBe(false);
});
