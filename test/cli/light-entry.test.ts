import { join } from 'node:path';
import { expect, test } from 'vitest';
import { REPO_ROOT, kiln, tempDir } from '../support/kiln.js';
import { linearArchive, post, startKiln } from '../support/server.js';

const REPORT = ['--import', join(REPO_ROOT, 'test/fixtures/preload/report-natives.mjs')];

// The HTTP side of Kiln and its --help never load ONNX Runtime or sharp: they cost time at every
// start, and a thread that never loads them never crashes in them.
test.each([['--help'], ['serve', '--help'], ['archive', '--help']])('kiln %s loads no native package', (...args) => {
  const run = kiln(args, { env: { NODE_OPTIONS: REPORT.join(' ') } });
  expect(run.status).toBe(0);
  expect(run.stderr).toContain('main-thread natives: none');
});

test('kiln serve answers predictions while its HTTP thread loads no native package (they load in the workers)', async () => {
  const archive = linearArchive(tempDir(), 'linear', 'batchSize: 1\n');
  const server = await startKiln(['--models', `linear=${archive}`], { env: { NODE_OPTIONS: REPORT.join(' ') } });
  expect((await post(`${server.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).status).toBe(200);
  expect(await server.stop('SIGTERM')).toBe(0);
  expect(server.output().match(/main-thread natives: .*/g)).toEqual(['main-thread natives: none']);
});
