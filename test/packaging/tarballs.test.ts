import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, onTestFinished, test } from 'vitest';
import { REPO_ROOT, tempDir } from '../support/kiln.js';

/**
 * The environment of a user's shell: none of the npm_* variables that `npm test` sets for the
 * tests (npm_config_local_prefix would point the nested npm at this checkout).
 */
function userEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) && key !== 'INIT_CWD'));
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = userEnv()): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 240_000 });
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(' ')} in ${cwd} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result;
}

/** npm install from the cache `npm ci` filled, as a user with the registry at hand would. */
const npmInstall = (cwd: string, args: string[] = [], env?: NodeJS.ProcessEnv) =>
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...args], cwd, env);

test('the tarballs install on their own: kiln init → npm install → npm test → kiln archive → kiln serve → a prediction', async () => {
  // A folder outside the checkout: nothing above it has a node_modules to fall back on.
  const root = realpathSync(tempDir());
  expect(root.startsWith(REPO_ROOT)).toBe(false);
  for (let dir = root; dir !== '/'; dir = join(dir, '..')) expect(existsSync(join(dir, 'node_modules')), dir).toBe(false);

  const packages = join(root, 'packages');
  const packed = run(process.execPath, [join(REPO_ROOT, 'scripts/pack.mjs'), packages], REPO_ROOT)
    .stdout.trim()
    .split('\n');
  expect(packed.map((p) => p.slice(packages.length + 1))).toEqual([
    'kiln-cli-0.1.0.tgz',
    'kiln-handler-sdk-0.1.0.tgz',
    'kiln-server-0.1.0.tgz',
  ]);

  // The CLI, installed from its tarball alone (with the two it depends on).
  const tools = join(root, 'tools');
  mkdirSync(tools);
  writeFileSync(join(tools, 'package.json'), '{ "private": true }\n');
  // Without a project .npmrc, onnxruntime-node's install script would fetch CUDA binaries from
  // outside the npm registry; a user without CUDA says the same (see the CLI's README).
  npmInstall(tools, packed, { ...userEnv(), ONNXRUNTIME_NODE_INSTALL: 'skip' });
  const kilnBin = join(tools, 'node_modules/.bin/kiln');
  expect(run(kilnBin, ['--version'], root).stdout.trim()).toBe('0.1.0');

  // A project from the packed templates, depending on the tarballs.
  const init = run(kilnBin, ['init', 'word-count', '--sdk', packages], root);
  expect(init.stderr).toContain('created word-count from the minimal template');
  const project = join(root, 'word-count');
  const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  expect(pkg.dependencies['@kiln/handler-sdk']).toBe(`file:${join(packages, 'kiln-handler-sdk-0.1.0.tgz')}`);
  npmInstall(project);
  expect(run('npm', ['test'], project, { ...userEnv(), CI: 'true', NO_COLOR: '1' }).stdout).toMatch(/Tests\s+\d+ passed/);
  run('npm', ['run', 'typecheck'], project);
  run('npm', ['run', 'archive'], project);
  const archive = join(project, 'model-store/minimal.mar');
  expect(existsSync(archive)).toBe(true);

  // Served by the project's own kiln, and asked once.
  const server = spawn(
    join(project, 'node_modules/.bin/kiln'),
    [
      'serve',
      '--models',
      `minimal=${archive}`,
      ...['inference', 'management', 'metrics'].flatMap((api) => [`--${api}-address`, 'http://127.0.0.1:0']),
    ],
    { cwd: project, env: { ...userEnv(), KILN_LOG_FORMAT: 'pretty' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  onTestFinished(() => {
    server.kill('SIGKILL');
  });
  let output = '';
  server.stdout.on('data', (d) => (output += d));
  server.stderr.on('data', (d) => (output += d));
  const deadline = Date.now() + 30_000;
  while (!/Kiln is ready/.test(output)) {
    if (server.exitCode !== null || Date.now() > deadline) throw new Error(`kiln serve did not get ready:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const inference = /inference API listening on (http:\/\/[^\s"]+)/.exec(output)![1]!;
  const text = 'packed and shipped';
  const answer = await fetch(`${inference}/predictions/minimal`, {
    method: 'POST',
    body: JSON.stringify({ text }),
    headers: { 'content-type': 'application/json' },
  });
  expect(answer.status).toBe(200);
  expect(await answer.json()).toMatchObject({ words: 3, upper: text.toUpperCase(), reversed: [...text].reverse().join('') });
}, 300_000);

test('every package has the fields that make it installable on its own', () => {
  for (const name of ['handler-sdk', 'server', 'cli']) {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'packages', name, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg, name).toMatchObject({
      name: `@kiln/${name}`,
      type: 'module',
      engines: { node: '>=20.6' },
      files: expect.arrayContaining(['dist']),
    });
    expect(existsSync(join(REPO_ROOT, 'packages', name, 'README.md')), name).toBe(true);
    // Each dependency is pinned or ranged, never a workspace or file link that only resolves here.
    for (const spec of Object.values((pkg.dependencies ?? {}) as Record<string, string>)) expect(spec, name).toMatch(/^\^?\d+\.\d+\.\d+$/);
  }
});
