import { readFileSync } from 'node:fs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, test } from 'vitest';
import { kiln, tempDir } from '../support/kiln.js';
import { linearExpected } from '../support/onnx-models.js';
import { makeProject, PROJECT_ARGS } from '../support/project.js';
import { readArchive, sha256, zipEntries } from '../support/read-archive.js';

const FORMATS = [
  { format: 'default', output: 'out/linear.mar' },
  { format: 'zip-store', output: 'out/linear.mar' },
  { format: 'tgz', output: 'out/linear.tar.gz' },
  { format: 'no-archive', output: 'out/linear' },
] as const;

// A folder's contents go to the archive root, as with torch-model-archiver; dot-files are skipped.
const EXPECTED_FILES = ['handler.mjs', 'index_to_name.json', 'linear.onnx', 'model-config.yaml', 'sub/notes.md', 'vocab.txt'];

describe.each(FORMATS)('kiln archive --archive-format $format', ({ format, output }) => {
  for (const external of [false, true]) {
    test(`${external ? 'with external data: ' : ''}writes the files, manifest, signature and hashes`, async () => {
      const dir = makeProject(tempDir(), { external });
      const run = kiln(['archive', ...PROJECT_ARGS, '--archive-format', format, '--description', 'y = xW + b'], { cwd: dir });
      expect(run.stderr).not.toContain('error');
      expect(run.status).toBe(0);
      expect(run.stdout.trim()).toBe(join(dir, output));

      const files = await readArchive(join(dir, output));
      const expectedFiles = external ? [...EXPECTED_FILES, 'linear.weights'].sort() : EXPECTED_FILES;
      expect([...files.keys()].filter((f) => f !== 'MAR-INF/MANIFEST.json').sort()).toEqual(expectedFiles);

      const manifest = JSON.parse(files.get('MAR-INF/MANIFEST.json')!.toString('utf8'));
      expect(manifest).toMatchObject({
        runtime: 'node',
        model: {
          modelName: 'linear',
          modelVersion: '1.0',
          serializedFile: 'linear.onnx',
          handler: 'handler.mjs',
          configFile: 'model-config.yaml',
          description: 'y = xW + b',
        },
        signature: {
          inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
          outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 3] }],
        },
      });
      expect(manifest.createdOn).toMatch(/^\d\d\/\d\d\/\d{4} \d\d:\d\d:\d\d$/);
      expect(manifest.archiverVersion).toMatch(/^\d+\.\d+\.\d+/);
      expect(manifest.sdkVersion).toMatch(/^\d+\.\d+\.\d+/);

      // Every hash and size in the manifest matches the bytes stored, and the sources on disk.
      expect(Object.keys(manifest.files).sort()).toEqual(expectedFiles);
      for (const [path, entry] of Object.entries<{ size: number; sha256: string }>(manifest.files)) {
        const bytes = files.get(path)!;
        expect(entry).toEqual({ size: bytes.length, sha256: sha256(bytes) });
      }
      expect(files.get('linear.onnx')).toEqual(readFileSync(join(dir, 'linear.onnx')));
      expect(files.get('vocab.txt')!.toString()).toBe('alpha\nbeta\n');

      // The model stored in the archive still runs and computes y = xW + b.
      const unpacked = mkdtempSync(join(dir, 'unpacked-'));
      for (const [path, bytes] of files) if (!path.includes('/')) writeFileSync(join(unpacked, path), bytes);
      const session = await ort.InferenceSession.create(join(unpacked, 'linear.onnx'));
      const row = [1, -2, 0.5, 3];
      const result = await session.run({ x: new ort.Tensor('float32', Float32Array.from(row), [1, 4]) });
      expect([...(result.y!.data as Float32Array)]).toEqual(linearExpected(row).map(Math.fround));

      const inspect = kiln(['inspect', output, '--json'], { cwd: dir });
      expect(inspect.status).toBe(0);
      const report = JSON.parse(inspect.stdout);
      expect(report.ok).toBe(true);
      expect(report.manifest).toEqual(manifest);
      expect(report.files.map((f: { status: string }) => f.status)).toEqual(expectedFiles.map(() => 'ok'));
    });
  }
});

test('zip formats store the manifest last and choose deflate or store', async () => {
  const dir = makeProject(tempDir());
  expect(kiln(['archive', ...PROJECT_ARGS], { cwd: dir }).status).toBe(0);
  const deflated = await zipEntries(join(dir, 'out/linear.mar'));
  expect(deflated.map((e) => e.name)).toEqual([...EXPECTED_FILES, 'MAR-INF/MANIFEST.json']);
  expect(deflated.every((e) => e.method === 8)).toBe(true);

  expect(kiln(['archive', ...PROJECT_ARGS, '--archive-format', 'zip-store', '-f'], { cwd: dir }).status).toBe(0);
  const stored = await zipEntries(join(dir, 'out/linear.mar'));
  expect(stored.every((e) => e.method === 0)).toBe(true);
});

test('default stores an entry deflate would barely shrink (weights), deflates the rest, and reads back the same', async () => {
  const dir = makeProject(tempDir());
  // 1 MiB of float32 noise, like trained weights, and 1 MiB of text.
  const weights = Buffer.from(Float32Array.from({ length: 1 << 18 }, (_, i) => Math.sin(i * 12.9898) * 43758.5453).buffer);
  const text = Buffer.from(Array.from({ length: 1 << 16 }, (_, i) => `token${i % 5000}\n`).join('')).subarray(0, 1 << 20);
  writeFileSync(join(dir, 'weights.bin'), weights);
  writeFileSync(join(dir, 'big-vocab.txt'), text);
  const args = PROJECT_ARGS.map((a) => (a === 'index_to_name.json,assets' ? `${a},weights.bin,big-vocab.txt` : a));
  expect(kiln(['archive', ...args], { cwd: dir }).status).toBe(0);
  const methods = Object.fromEntries((await zipEntries(join(dir, 'out/linear.mar'))).map((e) => [e.name, e.method]));
  expect(methods).toMatchObject({ 'weights.bin': 0, 'big-vocab.txt': 8, 'vocab.txt': 8, 'MAR-INF/MANIFEST.json': 8 });
  const files = await readArchive(join(dir, 'out/linear.mar'));
  expect(files.get('weights.bin')!.equals(weights)).toBe(true);
  expect(files.get('big-vocab.txt')!.equals(text)).toBe(true);
  expect(kiln(['inspect', 'out/linear.mar'], { cwd: dir }).status).toBe(0);
});

test('tgz puts every entry under <model-name>/, as torch-model-archiver does', async () => {
  const dir = makeProject(tempDir());
  expect(kiln(['archive', ...PROJECT_ARGS, '--archive-format', 'tgz'], { cwd: dir }).status).toBe(0);
  const { readTgz } = await import('../support/read-archive.js');
  const names = [...(await readTgz(join(dir, 'out/linear.tar.gz'))).keys()];
  expect(names.every((n) => n.startsWith('linear/'))).toBe(true);
});

test('kiln inspect prints the manifest, signature and files', () => {
  const dir = makeProject(tempDir());
  expect(kiln(['archive', ...PROJECT_ARGS], { cwd: dir }).status).toBe(0);
  const run = kiln(['inspect', 'out/linear.mar'], { cwd: dir });
  expect(run.status).toBe(0);
  expect(run.stdout).toContain('linear 1.0 (zip)');
  expect(run.stdout).toMatch(/x\s+FP32\s+\[-1, 4\]/);
  expect(run.stdout).toMatch(/y\s+FP32\s+\[-1, 3\]/);
  expect(run.stdout).toMatch(/ok\s+\S+ B\s+linear\.onnx/);
  expect(run.stdout).toContain('all files match the manifest');
});
