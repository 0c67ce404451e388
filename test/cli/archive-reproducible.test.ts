import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { kiln, tempDir } from '../support/kiln.js';
import { makeProject, PROJECT_ARGS } from '../support/project.js';
import { readArchive } from '../support/read-archive.js';

const EPOCH = '1700000000'; // 14/11/2023 22:13:20 UTC

test.each(['default', 'zip-store', 'tgz'])('two %s builds with the same SOURCE_DATE_EPOCH are byte-identical', async (format) => {
  const dir = makeProject(tempDir(), { external: true });
  const output = format === 'tgz' ? 'linear.tar.gz' : 'linear.mar';
  const build = (exportPath: string) =>
    kiln(['archive', ...PROJECT_ARGS, '--archive-format', format, '--export-path', exportPath], {
      cwd: dir,
      env: { SOURCE_DATE_EPOCH: EPOCH },
    });
  expect(build('first').status).toBe(0);
  await new Promise((resolve) => setTimeout(resolve, 1100)); // a clock-based timestamp would now differ
  expect(build('second').status).toBe(0);

  const first = readFileSync(join(dir, 'first', output));
  const second = readFileSync(join(dir, 'second', output));
  expect(first.equals(second)).toBe(true);

  const manifest = JSON.parse((await readArchive(join(dir, 'first', output))).get('MAR-INF/MANIFEST.json')!.toString());
  expect(manifest.createdOn).toBe('14/11/2023 22:13:20');
});

test('a SOURCE_DATE_EPOCH that is not whole seconds is a usage error', () => {
  const dir = makeProject(tempDir());
  const run = kiln(['archive', ...PROJECT_ARGS], { cwd: dir, env: { SOURCE_DATE_EPOCH: 'yesterday' } });
  expect(run.status).toBe(2);
  expect(run.stderr).toContain('SOURCE_DATE_EPOCH');
});

test('builds in different time zones are byte-identical', () => {
  const dir = makeProject(tempDir());
  const build = (exportPath: string, TZ: string) =>
    kiln(['archive', ...PROJECT_ARGS, '--export-path', exportPath], { cwd: dir, env: { SOURCE_DATE_EPOCH: EPOCH, TZ } });
  expect(build('utc', 'UTC').status).toBe(0);
  expect(build('tokyo', 'Asia/Tokyo').status).toBe(0);
  expect(readFileSync(join(dir, 'utc/linear.mar')).equals(readFileSync(join(dir, 'tokyo/linear.mar')))).toBe(true);
});
