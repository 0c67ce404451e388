import { rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { kiln, tempDir } from '../support/kiln.js';
import { makeProject, PROJECT_ARGS } from '../support/project.js';
import { readArchive } from '../support/read-archive.js';
import { rawZip } from '../support/raw-zip.js';
import { writeTgzFile, writeZipFile } from '../support/write-archive.js';

function built(format: string) {
  const dir = makeProject(tempDir());
  expect(kiln(['archive', ...PROJECT_ARGS, '--archive-format', format], { cwd: dir }).status).toBe(0);
  return dir;
}

/** The model's bytes with one byte flipped: same size, different hash. */
function flipped(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeUInt8(copy.readUInt8(copy.length - 1) ^ 0xff, copy.length - 1);
  return copy;
}

describe('kiln inspect finds tampering and exits 1 naming the file', () => {
  test('zip', async () => {
    const dir = built('default');
    const files = await readArchive(join(dir, 'out/linear.mar'));
    files.set('linear.onnx', flipped(files.get('linear.onnx')!));
    await writeZipFile(join(dir, 'tampered.mar'), files);
    const run = kiln(['inspect', 'tampered.mar'], { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/hash mismatch\s+\S+ B\s+linear\.onnx/);
    expect(run.stderr).toContain('KILN_ERR_ARCHIVE_INTEGRITY');
    expect(run.stderr).toContain('linear.onnx: hash mismatch');
  });

  test('tgz, with a file that changed size', async () => {
    const dir = built('tgz');
    const files = await readArchive(join(dir, 'out/linear.tar.gz'));
    files.set('vocab.txt', Buffer.from('alpha\nbeta\ngamma\n'));
    await writeTgzFile(join(dir, 'tampered.tar.gz'), 'linear', files);
    const run = kiln(['inspect', 'tampered.tar.gz', '--json'], { cwd: dir });
    expect(run.status).toBe(1);
    const report = JSON.parse(run.stdout);
    expect(report.ok).toBe(false);
    expect(report.files.find((f: { path: string }) => f.path === 'vocab.txt').status).toBe('size mismatch');
    expect(run.stderr).toContain('vocab.txt: size mismatch');
  });

  test('folder: a missing file and a file the manifest does not list', () => {
    const dir = built('no-archive');
    rmSync(join(dir, 'out/linear/vocab.txt'));
    writeFileSync(join(dir, 'out/linear/smuggled.js'), 'process.exit(1)');
    const run = kiln(['inspect', 'out/linear'], { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('vocab.txt: missing');
    expect(run.stderr).toContain('smuggled.js: not in manifest');
  });

  test('folder: a link is refused', () => {
    const dir = built('no-archive');
    symlinkSync('/etc/passwd', join(dir, 'out/linear/passwd'));
    const run = kiln(['inspect', 'out/linear'], { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KILN_ERR_ARCHIVE_UNSAFE_ENTRY');
    expect(run.stderr).toContain('"passwd"');
  });
});

describe('kiln inspect refuses what is not an archive', () => {
  test('a file of another kind', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    const run = kiln(['inspect', 'notes.txt'], { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KILN_ERR_ARCHIVE_UNREADABLE');
    expect(run.stderr).toContain('neither a zip (.mar), a .tar.gz nor a folder');
  });

  test('a zip without a manifest', async () => {
    const dir = tempDir();
    await writeZipFile(join(dir, 'plain.zip'), new Map([['a.txt', Buffer.from('a')]]));
    const run = kiln(['inspect', 'plain.zip'], { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('has no MAR-INF/MANIFEST.json');
  });

  test('a manifest that breaks the schema names the field', async () => {
    const dir = tempDir();
    const manifest = { createdOn: 'yesterday', runtime: 'python', model: { modelName: 'x' }, files: {} };
    await writeZipFile(join(dir, 'bad.mar'), new Map([['MAR-INF/MANIFEST.json', Buffer.from(JSON.stringify(manifest))]]));
    const run = kiln(['inspect', 'bad.mar'], { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KILN_ERR_MANIFEST_INVALID');
    expect(run.stderr).toContain('runtime: must be "node"');
    expect(run.stderr).toContain('model: missing required key "modelVersion"');
  });

  test('a missing path', () => {
    const run = kiln(['inspect', '/nonexistent/x.mar']);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('/nonexistent/x.mar: no such file or folder');
  });
});

describe('kiln inspect refuses unsafe zip entries before reading them', () => {
  test.each([
    ['../evil.sh', 'its path climbs out with `..`'],
    ['/etc/cron.d/evil', 'its path is absolute'],
    ['C:/Windows/evil', 'its path is absolute'],
    ['sub\\..\\evil', 'its path has a backslash'],
    ['a//b', 'its path has an empty or `.` segment'],
    ['./x', 'its path has an empty or `.` segment'],
  ])('%j', async (name, reason) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'hostile.mar'), rawZip([{ name, data: Buffer.from('x') }]));
    const run = kiln(['inspect', 'hostile.mar'], { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KILN_ERR_ARCHIVE_UNSAFE_ENTRY');
    expect(run.stderr).toContain(`entry "${name}" is refused`);
    expect(run.stderr).toContain(`is refused: ${reason}`);
  });

  test('a duplicate entry', () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'dup.mar'),
      rawZip([
        { name: 'a.txt', data: Buffer.from('1') },
        { name: 'a.txt', data: Buffer.from('2') },
      ]),
    );
    const run = kiln(['inspect', 'dup.mar'], { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('entry "a.txt" is refused: it appears twice');
  });

  test('a symbolic link', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'link.mar'), rawZip([{ name: 'passwd', data: Buffer.from('/etc/passwd'), mode: 0o120777 }]));
    const run = kiln(['inspect', 'link.mar'], { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('entry "passwd" is refused: it is a link');
  });
});
