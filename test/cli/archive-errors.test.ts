import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { kiln, tempDir } from '../support/kiln.js';
import { ElemType, writeModel } from '../support/onnx-models.js';
import { makeProject, PROJECT_ARGS } from '../support/project.js';

function archiveIn(dir: string, args: string[]) {
  return kiln(['archive', ...args], { cwd: dir });
}

/** Replaces (or appends) one flag's value in the project's arguments. */
function withFlag(flag: string, value: string, base = PROJECT_ARGS): string[] {
  const at = base.indexOf(flag);
  return at === -1 ? [...base, flag, value] : [...base.slice(0, at), flag, value, ...base.slice(at + 2)];
}

/** Nothing was written: no archive, and no temporary file beside where it would have gone. */
function expectNothingWritten(dir: string): void {
  const out = join(dir, 'out');
  expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
}

describe('usage errors exit 2', () => {
  test('a missing required flag is named', () => {
    const dir = makeProject(tempDir());
    const run = archiveIn(dir, ['-v', '1', '--handler', 'handler.ts']);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("required option '--model-name <name>' not specified");
  });

  test('a model name with special characters', () => {
    const dir = makeProject(tempDir());
    const run = archiveIn(dir, withFlag('--model-name', 'my model!'));
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('KILN_ERR_INVALID_MODEL_NAME');
    expect(run.stderr).toContain('--model-name "my model!"');
    expect(run.stderr).toContain('^[A-Za-z0-9][A-Za-z0-9_\\-.]*$');
    expectNothingWritten(dir);
  });

  test('an unknown archive format lists the choices', () => {
    const dir = makeProject(tempDir());
    const run = archiveIn(dir, [...PROJECT_ARGS, '--archive-format', 'rar']);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("'rar' is invalid");
    expect(run.stderr).toContain('zip-store');
  });

  test('an export path that is a file', () => {
    const dir = makeProject(tempDir());
    writeFileSync(join(dir, 'taken'), 'x');
    const run = archiveIn(dir, withFlag('--export-path', 'taken'));
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('KILN_ERR_EXPORT_PATH_NOT_DIR');
    expect(run.stderr).toContain('--export-path taken is a file');
  });

  test('an unknown command', () => {
    const run = kiln(['archvie']);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("unknown command 'archvie'");
  });
});

describe('failures exit 1 and name the file or flag', () => {
  test('the output exists: suggest --force, and --force overwrites', () => {
    const dir = makeProject(tempDir());
    expect(archiveIn(dir, PROJECT_ARGS).status).toBe(0);
    const again = archiveIn(dir, PROJECT_ARGS);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('KILN_ERR_OUTPUT_EXISTS');
    expect(again.stderr).toContain('out/linear.mar already exists');
    expect(again.stderr).toContain('--force');
    expect(archiveIn(dir, [...PROJECT_ARGS, '--force']).status).toBe(0);
    expect(readdirSync(join(dir, 'out'))).toEqual(['linear.mar']);
  });

  test('--force replaces a no-archive folder as a whole', () => {
    const dir = makeProject(tempDir());
    const args = [...PROJECT_ARGS, '--archive-format', 'no-archive'];
    expect(archiveIn(dir, args).status).toBe(0);
    writeFileSync(join(dir, 'out/linear/stale.txt'), 'left from before');
    expect(archiveIn(dir, [...args, '-f']).status).toBe(0);
    expect(existsSync(join(dir, 'out/linear/stale.txt'))).toBe(false);
    expect(readdirSync(join(dir, 'out'))).toEqual(['linear']);
  });

  test.each([
    ['--serialized-file', 'missing.onnx'],
    ['--config-file', 'missing.yaml'],
    ['--extra-files', 'index_to_name.json,missing.txt'],
    ['--handler', 'missing.ts'],
  ])('a missing %s file', (flag, value) => {
    const dir = makeProject(tempDir());
    const run = archiveIn(dir, withFlag(flag === '--config-file' ? '-c' : flag, value));
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KILN_ERR_FILE_NOT_FOUND');
    expect(run.stderr).toContain(`${flag} `);
    expect(run.stderr).toContain('missing.');
    expectNothingWritten(dir);
  });

  test('a handler that is neither a file nor a built-in lists the built-ins', () => {
    const dir = makeProject(tempDir());
    const run = archiveIn(dir, withFlag('--handler', 'image_clasifier'));
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('not a built-in handler (image_classifier, object_detector, image_segmenter, tensor)');
  });

  test('a config with an unknown key and a wrong type names both, with their lines', () => {
    const dir = makeProject(tempDir());
    writeFileSync(join(dir, 'model-config.yaml'), 'minWorkers: 1\nbatchsize: 8\nmaxBatchDelay: soon\n');
    const run = archiveIn(dir, PROJECT_ARGS);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KILN_ERR_MODEL_CONFIG_INVALID');
    expect(run.stderr).toContain('model-config.yaml:2: unknown key "batchsize" (did you mean "batchSize"?)');
    expect(run.stderr).toContain('model-config.yaml:3: maxBatchDelay: must be integer');
    expectNothingWritten(dir);
  });

  test('a config that is not YAML', () => {
    const dir = makeProject(tempDir());
    writeFileSync(join(dir, 'model-config.yaml'), 'batchSize: 8\n  bad: [\n');
    const run = archiveIn(dir, PROJECT_ARGS);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/model-config\.yaml:\d+: /);
  });

  test.each([
    ['an empty file', Buffer.alloc(0), 'the file is empty'],
    ['a text file', Buffer.from('this is not a model, it is a README\n'), 'not protobuf-encoded ONNX'],
    ['a PNG', Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), 'not protobuf-encoded ONNX'],
  ])('a serialized file that is %s', (_what, bytes, reason) => {
    const dir = makeProject(tempDir());
    writeFileSync(join(dir, 'linear.onnx'), bytes);
    const run = archiveIn(dir, PROJECT_ARGS);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KILN_ERR_NOT_ONNX_MODEL');
    expect(run.stderr).toContain('--serialized-file linear.onnx is not a usable ONNX model');
    expect(run.stderr).toContain(reason);
    expectNothingWritten(dir);
  });

  test('a model whose input has an element type Kiln cannot serve', () => {
    const dir = makeProject(tempDir());
    writeModel(dir, 'linear.onnx', {
      inputs: [{ name: 'z', elemType: ElemType.COMPLEX64, dims: [2] }],
      outputs: [{ name: 'w', elemType: ElemType.COMPLEX64, dims: [2] }],
      nodes: [{ opType: 'Identity', inputs: ['z'], outputs: ['w'] }],
    });
    const run = archiveIn(dir, PROJECT_ARGS);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('"z" has element type COMPLEX64');
  });

  test('a model whose external data file is missing', () => {
    const dir = makeProject(tempDir(), { external: true });
    writeFileSync(join(dir, 'linear.weights'), Buffer.alloc(8));
    const truncated = archiveIn(dir, PROJECT_ARGS);
    expect(truncated.status).toBe(1);
    expect(truncated.stderr).toContain('the external-data file is truncated or stale');
  });

  test('a handler that does not compile: file, line and column', () => {
    const dir = makeProject(tempDir());
    writeFileSync(join(dir, 'handler.ts'), 'export default class H {\n  handle(x: number) {\n    return x +;\n  }\n}\n');
    const run = archiveIn(dir, PROJECT_ARGS);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KILN_ERR_HANDLER_COMPILE');
    expect(run.stderr).toMatch(/handler\.ts:3:15: Unexpected ";"/);
    expectNothingWritten(dir);
  });

  test('a handler import that cannot be resolved', () => {
    const dir = makeProject(tempDir());
    writeFileSync(join(dir, 'handler.ts'), "import pad from 'left-pad-not-installed';\nexport default pad;\n");
    const run = archiveIn(dir, PROJECT_ARGS);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/handler\.ts:1:17: Could not resolve "left-pad-not-installed"/);
  });

  test('a handler without the named export lists what it has', () => {
    const dir = makeProject(tempDir());
    const run = archiveIn(dir, withFlag('--handler', 'handler.ts:Missing'));
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KILN_ERR_HANDLER_EXPORT');
    expect(run.stderr).toContain('no export "Missing" (it exports: default)');
  });

  test('two inputs at one archive path', () => {
    const dir = makeProject(tempDir());
    mkdirSync(join(dir, 'more'));
    writeFileSync(join(dir, 'more/index_to_name.json'), '{}');
    const run = archiveIn(dir, withFlag('--extra-files', 'index_to_name.json,more'));
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KILN_ERR_ARCHIVE_PATH_CONFLICT');
    expect(run.stderr).toContain('"index_to_name.json"');
    expectNothingWritten(dir);
  });

  test('an extra file under MAR-INF/ is refused', () => {
    const dir = makeProject(tempDir());
    mkdirSync(join(dir, 'extra/MAR-INF'), { recursive: true });
    writeFileSync(join(dir, 'extra/MAR-INF/MANIFEST.json'), '{}');
    const run = archiveIn(dir, withFlag('--extra-files', 'extra'));
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('MAR-INF/ is reserved');
  });
});
