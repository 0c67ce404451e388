import { spawnSync } from 'node:child_process';
import { stripVTControlCharacters } from 'node:util';
import { readdirSync, readFileSync, statSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { TEMPLATES } from '../../packages/cli/src/commands/init/spec.js';
import { KILN_BIN, REPO_ROOT, kiln, tempDir } from '../support/kiln.js';

/** What each template's `npm run predict` must answer, checked against its example input. */
const EXPECTED: Record<(typeof TEMPLATES)[number], RegExp> = {
  minimal: /"words": 2/,
  'image-classifier': /"red": 0\.\d+/,
  ocr: /"text": "Hello Kiln 2026"/,
};

/** Splits an npm script into words, honouring single and double quotes. */
function words(script: string): string[] {
  return [...script.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

/** Runs a package.json script's `kiln ...` command with the repository's kiln binary. */
function runScript(dir: string, script: string) {
  const [bin, ...args] = words(script);
  expect(bin).toBe('kiln');
  return spawnSync(process.execPath, [KILN_BIN, ...args], { cwd: dir, encoding: 'utf8' });
}

test('the template list matches the templates/ folder', () => {
  const folders = readdirSync(join(REPO_ROOT, 'templates')).filter((f) => statSync(join(REPO_ROOT, 'templates', f)).isDirectory());
  expect([...folders].sort()).toEqual([...TEMPLATES].sort());
});

describe.each(TEMPLATES)('template %s', (template) => {
  test('initialises, passes its own unit test, archives and predicts', () => {
    const dir = join(tempDir(), 'my-model');
    const init = kiln(['init', dir, '--template', template]);
    expect(init.stderr).toContain(`from the ${template} template`);
    expect(init.status).toBe(0);

    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    expect(pkg.name).toBe('my-model');
    // The published range of this CLI's version, and what the project needs to type-check.
    expect(pkg.dependencies['@kiln/handler-sdk']).toBe('^0.1.0');
    expect(pkg.devDependencies).toMatchObject({ '@kiln/cli': '^0.1.0', typescript: expect.any(String), '@types/node': expect.any(String) });
    expect(readFileSync(join(dir, '.npmrc'), 'utf8')).toContain('onnxruntime-node-install=skip');
    for (const file of ['src/handler.ts', 'src/handler.test.ts', 'model-config.yaml', 'README.md'])
      expect(statSync(join(dir, file)).isFile()).toBe(true);

    // Stands in for `npm install`: the project resolves packages from the repository.
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
    const unit = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules/vitest/vitest.mjs'), 'run'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, CI: 'true', NO_COLOR: '1' },
    });
    expect(stripVTControlCharacters(unit.stdout + unit.stderr)).toMatch(/Tests\s+\d+ passed/);
    expect(unit.status).toBe(0);
    // Every import is declared and typed: the project's own typecheck script passes.
    expect(pkg.scripts.typecheck).toBe('tsc -p tsconfig.json');
    const typecheck = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(typecheck.stdout + typecheck.stderr).toBe('');
    expect(typecheck.status).toBe(0);
    const imported = [...readFileSync(join(dir, 'src/handler.ts'), 'utf8').matchAll(/from '([^.][^']*)'/g)].map((m) => m[1]!);
    for (const name of imported.filter((n) => !n.startsWith('node:'))) {
      const root = name.startsWith('@') ? name.split('/').slice(0, 2).join('/') : name.split('/')[0]!;
      expect(Object.keys(pkg.dependencies), `${template} imports ${name}`).toContain(root);
    }

    const archive = runScript(dir, pkg.scripts.archive);
    expect(archive.stderr).not.toContain('error');
    expect(archive.status).toBe(0);
    const predict = runScript(dir, pkg.scripts.predict);
    expect(predict.stderr).not.toContain('error');
    expect(predict.status).toBe(0);
    expect(predict.stdout).toMatch(EXPECTED[template]);
  });
});

test('--sdk takes the @kiln packages from the tarballs of a local build', () => {
  const packages = tempDir();
  for (const file of ['kiln-handler-sdk-0.1.0.tgz', 'kiln-server-0.1.0.tgz', 'kiln-cli-0.1.0.tgz', 'other-1.0.0.tgz'])
    writeFileSync(join(packages, file), '');
  const dir = join(tempDir(), 'local');
  const run = kiln(['init', dir, '--sdk', join(packages, 'kiln-handler-sdk-0.1.0.tgz')]);
  expect(run.status).toBe(0);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  expect(pkg.dependencies['@kiln/handler-sdk']).toBe(`file:${join(packages, 'kiln-handler-sdk-0.1.0.tgz')}`);
  expect(pkg.devDependencies['@kiln/cli']).toBe(`file:${join(packages, 'kiln-cli-0.1.0.tgz')}`);
  expect(pkg.devDependencies['@kiln/server']).toBe(`file:${join(packages, 'kiln-server-0.1.0.tgz')}`);

  const missing = kiln(['init', join(tempDir(), 'x'), '--sdk', tempDir()]);
  expect(missing.status).toBe(1);
  expect(missing.stderr).toMatch(/KILN_ERR_FILE_NOT_FOUND: --sdk .*: no kiln-handler-sdk-<version>\.tgz in .*; run npm run pack/);
});

describe('kiln init errors', () => {
  test('a folder that already has files', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'taken'));
    writeFileSync(join(dir, 'taken/file.txt'), 'x');
    const run = kiln(['init', 'taken'], { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KILN_ERR_INIT_TARGET_NOT_EMPTY: taken already has files');
  });

  test('an unknown template lists the choices', () => {
    const run = kiln(['init', join(tempDir(), 'x'), '--template', 'gpt']);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(
      "error KILN_ERR_USAGE: option '-t, --template <name>' argument 'gpt' is invalid. Allowed choices are minimal, image-classifier, ocr",
    );
  });
});
