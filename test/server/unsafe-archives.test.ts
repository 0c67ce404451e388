import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { tarHeader } from '../support/raw-tar.js';
import { rawZip, type RawEntry } from '../support/raw-zip.js';
import { linearArchive, post, startKiln } from '../support/server.js';

/** Every file under a folder, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

const MB = 1024 * 1024;
const HOSTILE: Record<string, { file: () => Buffer; ext: string; refusal: RegExp }> = {
  climb: {
    ext: 'mar',
    file: () => rawZip([{ name: '../../evil.sh', data: Buffer.from('rm -rf /') }]),
    refusal: /KILN_ERR_ARCHIVE_UNSAFE_ENTRY.*"\.\.\/\.\.\/evil\.sh" is refused: its path climbs out/,
  },
  absolute: {
    ext: 'mar',
    file: () => rawZip([{ name: '/etc/cron.d/evil', data: Buffer.from('x') }]),
    refusal: /"\/etc\/cron\.d\/evil" is refused: its path is absolute/,
  },
  backslash: {
    ext: 'mar',
    file: () => rawZip([{ name: '..\\evil.dll', data: Buffer.from('x') }]),
    refusal: /is refused: its path has a backslash/,
  },
  link: {
    ext: 'mar',
    file: () => rawZip([{ name: 'passwd', data: Buffer.from('/etc/passwd'), mode: 0o120777 }]),
    refusal: /"passwd" is refused: it is a link/,
  },
  duplicate: {
    ext: 'mar',
    file: () =>
      rawZip([
        { name: 'a.txt', data: Buffer.from('1') },
        { name: 'a.txt', data: Buffer.from('2') },
      ]),
    refusal: /"a\.txt" is refused: it appears twice/,
  },
  many: {
    ext: 'mar',
    file: () => rawZip(Array.from({ length: 10_001 }, (_, i): RawEntry => ({ name: `f${i}`, data: Buffer.alloc(0) }))),
    refusal: /KILN_ERR_ARCHIVE_LIMIT.*more than 10000 entries/,
  },
  zipbomb: {
    ext: 'mar',
    file: () => rawZip([{ name: 'zeros.bin', data: Buffer.alloc(80 * MB), deflate: true }]),
    refusal: /KILN_ERR_ARCHIVE_LIMIT.*a compression bomb/,
  },
  understated: {
    ext: 'mar',
    file: () => rawZip([{ name: 'small.bin', data: Buffer.alloc(100_000), deflate: true, declaredSize: 10 }]),
    refusal: /KILN_ERR_ARCHIVE_UNSAFE_ENTRY.*"small\.bin" is refused: (its data does not match the size it declares|holds more than)/,
  },
  tgzbomb: {
    ext: 'tar.gz',
    file: () => gzipSync(Buffer.concat([tarHeader('evil/zeros.bin', 100 * MB), Buffer.alloc(100 * MB), Buffer.alloc(1024)])),
    refusal: /KILN_ERR_ARCHIVE_LIMIT.*a compression bomb/,
  },
};

test('each unsafe archive is refused, leaves nothing on disk, and the server serves the rest', async () => {
  const dir = tempDir();
  const scratch = tempDir('kiln-tmpdir-'); // the server's TMPDIR, where it stages archives
  const models = Object.entries(HOSTILE).map(([name, hostile]) => {
    const path = join(dir, `${name}.${hostile.ext}`);
    writeFileSync(path, hostile.file());
    return `${name}=${path}`;
  });
  const good = linearArchive(dir, 'linear', 'batchSize: 1\n');
  const kiln = await startKiln(['--models', ...models, `linear=${good}`], { env: { TMPDIR: scratch } });

  for (const [name, hostile] of Object.entries(HOSTILE)) {
    const line = kiln
      .output()
      .split('\n')
      .find((l) => l.includes(`ERROR: model ${name} failed to load`));
    expect(line, name).toBeDefined();
    expect(line, name).toMatch(hostile.refusal);
  }
  expect(kiln.output()).toContain('Kiln is ready: 1 model serving');
  const ping = await fetch(`${kiln.inference}/ping`);
  expect(ping.status).toBe(500); // models given at start were refused: not healthy
  expect(((await ping.json()) as { problems: string[] }).problems.some((p) => p.startsWith('climb: '))).toBe(true);
  expect((await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).status).toBe(200);

  // Only the good model's files exist in the server's working folder
  const files = readdirSync(scratch)
    .filter((d) => d.startsWith('kiln-server-'))
    .flatMap((d) => filesUnder(join(scratch, d)));
  expect(files.length).toBeGreaterThan(0);
  // (and the server's own temp folder, where ONNX Runtime writes a file or two per session)
  expect(files.filter((f) => !/\/kiln-server-\w+\/((models\/linear-[0-9a-f]+|tmp)\/|server\.pid$)/.test(f))).toEqual([]);
  for (const name of Object.keys(HOSTILE)) expect((await post(`${kiln.inference}/predictions/${name}`, {})).status).toBe(404);
});
