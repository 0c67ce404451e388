import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { filesUnder, processesUsing } from '../support/hygiene.js';
import { kiln, tempDir } from '../support/kiln.js';
import { rawZip } from '../support/raw-zip.js';
import { linearArchive } from '../support/server.js';

/** Loopback addresses on free ports, for a `kiln serve` meant to stop before it serves. */
const anyPorts = ['--management-address', 'http://127.0.0.1:0', '--metrics-address', 'http://127.0.0.1:0', '--grpc-address', '127.0.0.1:0'];

/**
 * Each command fails with its exit code (2 for a malformed command line, 1 otherwise), Kiln's code
 * and a message naming the mistake; and leaves nothing behind in its TMPDIR or the process table.
 */
type Case = [string, (dir: string) => string[] | Promise<string[]>, number, string, RegExp];
const CASES: Case[] = [
  [
    'serve: a --config file that does not exist',
    () => ['serve', '--config', '/nonexistent/kiln.yaml'],
    1,
    'KILN_ERR_SERVER_CONFIG_INVALID',
    /--config \/nonexistent\/kiln\.yaml: no such file/,
  ],
  ['serve: --workers 0', () => ['serve', '--workers', '0'], 1, 'KILN_ERR_SERVER_CONFIG_INVALID', /--workers: must be >= 1/],
  [
    'serve: a token file with a short token',
    (dir) => (writeFileSync(join(dir, 'token'), 'short\n'), ['serve', '--token-file', join(dir, 'token')]),
    1,
    'KILN_ERR_SERVER_CONFIG_INVALID',
    /the auth token must be at least 16 characters/,
  ],
  [
    'serve: a model name that climbs out',
    (dir) => ['serve', '--models', `../evil=${linearArchive(dir, 'linear', 'batchSize: 1\n')}`],
    2,
    'KILN_ERR_INVALID_MODEL_NAME',
    /the name "\.\.\/evil" is not allowed/,
  ],
  [
    'serve: an address in use, after the models started loading: they are stopped and their files removed',
    async (dir) => {
      const busy = createServer().listen(0, '127.0.0.1');
      await new Promise((resolve) => busy.once('listening', resolve));
      const { port } = busy.address() as { port: number };
      setTimeout(() => busy.close(), 15_000).unref();
      return [
        'serve',
        '--isolation',
        'process',
        '--models',
        `linear=${linearArchive(dir, 'linear', 'batchSize: 1\n')}`,
        '--inference-address',
        `http://127.0.0.1:${port}`,
        ...anyPorts,
      ];
    },
    1,
    'KILN_ERR_SERVER_CONFIG_INVALID',
    /the inference API cannot listen on http:\/\/127\.0\.0\.1:\d+: the address is in use; choose another --inference-address/,
  ],
  [
    'archive: a serialized file that does not exist',
    () => ['archive', '--model-name', 'x', '-v', '1', '--serialized-file', 'nope.onnx', '--handler', 'tensor', '--export-path', 'out'],
    1,
    'KILN_ERR_FILE_NOT_FOUND',
    /--serialized-file nope\.onnx: no such file/,
  ],
  [
    'archive: a model name that climbs out',
    () => ['archive', '--model-name', '../x', '-v', '1', '--serialized-file', 'nope.onnx', '--handler', 'tensor'],
    2,
    'KILN_ERR_INVALID_MODEL_NAME',
    /--model-name "\.\.\/x" is not allowed/,
  ],
  [
    'inspect: random bytes',
    (dir) => (
      writeFileSync(join(dir, 'rand.mar'), Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 31) % 256))),
      ['inspect', join(dir, 'rand.mar')]
    ),
    1,
    'KILN_ERR_ARCHIVE_UNREADABLE',
    /rand\.mar is neither a zip \(\.mar\), a \.tar\.gz nor a folder/,
  ],
  [
    'predict: a zip-slip archive is refused before anything is written',
    (dir) => (
      writeFileSync(join(dir, 'slip.mar'), rawZip([{ name: '../../evil.sh', data: Buffer.from('x') }])),
      ['predict', join(dir, 'slip.mar'), join(dir, 'slip.mar')]
    ),
    1,
    'KILN_ERR_ARCHIVE_UNSAFE_ENTRY',
    /entry "\.\.\/\.\.\/evil\.sh" is refused: its path climbs out/,
  ],
  [
    'bench: a server that is not there',
    () => ['bench', 'http://127.0.0.1:1', '--model', 'linear', '-c', '1', '--duration', '1'],
    1,
    'KILN_ERR_BENCH_TARGET',
    /could not reach http:\/\/127\.0\.0\.1:1/,
  ],
  ['an unknown command', () => ['frobnicate'], 2, 'KILN_ERR_USAGE', /unknown command 'frobnicate'/],
];

describe('CLI', () => {
  test.each(CASES)('%s', async (_, args, exit, code, message) => {
    const dir = tempDir();
    const scratch = tempDir('kiln-tmpdir-'); // the command's TMPDIR: nothing may be left in it
    const run = kiln(await args(dir), { cwd: dir, env: { TMPDIR: scratch } });
    expect({ exit: run.status, code: /error (KILN_ERR_\w+)/.exec(run.stderr)?.[1] }, run.stderr).toEqual({ exit, code });
    expect(run.stderr).toMatch(message);
    expect(processesUsing(scratch)).toEqual([]);
    expect(filesUnder(scratch)).toEqual([]);
  });
});
