import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderTorchServeKeysTable } from '@kiln/server';
import { describe, expect, onTestFinished, test } from 'vitest';
import { REPO_ROOT } from '../support/kiln.js';
import { linearExpected } from '../support/onnx-models.js';
import { linearArchive, post } from '../support/server.js';
import {
  DOCKER,
  ENTRYPOINT,
  KSERVE_PROPERTIES,
  PRINT_INVOCATION,
  ZERO_ADDRESSES,
  cleanEnv,
  escape,
  healthcheck,
  invocation,
  layout,
  startEntrypoint,
} from './entrypoint.js';
import { readDockerfile } from './read-dockerfile.js';

/*
 * The container image (deploy/docker), tested without a container runtime: the Dockerfile's structure,
 * and entrypoint.sh and healthcheck.mjs run for real on this machine, with KILN_MODELS_DIR and KILN_BIN
 * pointing them at a temporary folder and at this repository's CLI. Building and running the image
 * needs podman: that test runs only where podman and a built image (KILN_TEST_IMAGE) are present.
 */

describe('the Dockerfile', () => {
  const dockerfile = readDockerfile();
  const final = dockerfile.stages.at(-1)!;
  const finalOps = (op: string) => final.body.filter((i) => i.op === op).map((i) => i.args);

  test('is multi-stage, every stage on a pinned slim Node base that meets package.json engines', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    const engines = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    const minimumMajor = Number(/(\d+)/.exec(engines)![1]);
    for (const stage of dockerfile.stages) {
      // A stage is built FROM a base image or an earlier stage.
      if (dockerfile.stages.some((s) => s.name === stage.base)) continue;
      expect(stage.base).toMatch(/^node:\d+-bookworm-slim$/);
      expect(stage.base).not.toMatch(/:latest$|^[^:]+$/);
      expect(Number(/^node:(\d+)/.exec(stage.base)![1])).toBeGreaterThanOrEqual(minimumMajor);
    }
  });

  test('builds in one stage and installs only production dependencies in another, which the runtime stage copies', () => {
    const runs = (stage: (typeof dockerfile.stages)[number]) => stage.body.filter((i) => i.op === 'RUN').map((i) => i.args);
    const build = dockerfile.stages.find((s) => runs(s).some((r) => r.includes('npm run build')));
    const deps = dockerfile.stages.find((s) => runs(s).some((r) => /npm ci\b.*--omit=dev/.test(r)));
    expect(build?.name).toBeDefined();
    expect(deps?.name).toBeDefined();
    expect(deps).not.toBe(build);
    const copies = finalOps('COPY');
    // node_modules from the production install; from the build stage, only the compiled dist/ folders.
    expect(copies.some((c) => c.startsWith(`--from=${deps!.name} /opt/kiln/`))).toBe(true);
    const fromBuild = copies.filter((c) => c.startsWith(`--from=${build!.name} `));
    expect(fromBuild.length).toBeGreaterThan(0);
    for (const copy of fromBuild) expect(copy).toMatch(/\/dist\/? /);
    expect(final.body.some((i) => i.op === 'RUN' && /npm (ci|install)/.test(i.args))).toBe(false);
  });

  test('runs as the non-root user 10001, under tini, with the health check, the ports, the models volume and the state folder', () => {
    expect(finalOps('USER')).toEqual(['10001:10001']);
    expect(finalOps('RUN').join('\n')).toMatch(/apt-get install -y --no-install-recommends tini/);
    expect(finalOps('RUN').join('\n')).toMatch(/useradd .*--uid 10001/);
    expect(JSON.parse(finalOps('ENTRYPOINT')[0]!)).toEqual(['/usr/bin/tini', '--', '/opt/kiln/deploy/docker/entrypoint.sh']);
    expect(JSON.parse(finalOps('CMD')[0]!)).toEqual(['serve']);
    const check = finalOps('HEALTHCHECK');
    expect(check).toHaveLength(1);
    expect(check[0]).toMatch(/CMD \["node", "\/opt\/kiln\/deploy\/docker\/healthcheck\.mjs"\]$/);
    expect(finalOps('EXPOSE')).toEqual(['8080 8081 8082 8085 7070 7071']);
    expect(finalOps('VOLUME')).toEqual(['/mnt/models']);
    const env = finalOps('ENV').join(' ').split(/\s+/);
    expect(env).toContain('KILN_STATE_DIR=/var/lib/kiln');
    expect(env).toContain('ORT_DISABLE_TELEMETRY=1');
    // Owned by kiln, and open to group 0 for platforms that run the image as an arbitrary uid (OpenShift).
    expect(finalOps('RUN').join('\n')).toMatch(/chown kiln:0 \/var\/lib\/kiln .*chmod 0770 \/var\/lib\/kiln/);
  });

  test('copies only files that exist and that Dockerfile.dockerignore lets into the build context', () => {
    const ignore = readFileSync(join(DOCKER, 'Dockerfile.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    // Everything is excluded first; each source is let back in by a `!` line naming it or a folder above it.
    expect(ignore[0]).toBe('*');
    const allowed = ignore.filter((line) => line.startsWith('!')).map((line) => line.slice(1));
    const sources = dockerfile.all
      .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from='))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(existsSync(join(REPO_ROOT, source)), source).toBe(true);
      expect(
        allowed.some((a) => a === source || (a.endsWith('/') && source.startsWith(a))),
        `${source} is let into the context`,
      ).toBe(true);
    }
  });

  test('entrypoint.sh is POSIX sh, under `set -eu`, and replaces itself with the server', () => {
    const script = readFileSync(ENTRYPOINT, 'utf8');
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(script).toMatch(/^set -eu$/m);
    expect(script.trimEnd().split('\n').at(-1)).toBe('exec node "$bin" serve "$@"');
    expect(statSync(ENTRYPOINT).mode & 0o111).not.toBe(0);
    for (const shell of ['sh', 'dash']) {
      const check = spawnSync(shell, ['-n', ENTRYPOINT], { encoding: 'utf8' });
      if (check.error === undefined) expect(check.status, `${shell} -n: ${check.stderr}`).toBe(0);
    }
  });
});

describe('entrypoint.sh decides', () => {
  test('with nothing set: every API on 0.0.0.0, every archive in the models folder, a token generated (600) and kept for the next start', () => {
    const dir = layout();
    const first = invocation([], dir.env);
    expect(first.argv).toEqual(['serve']);
    const tokenFile = join(dir.state, 'token');
    expect(first.env).toEqual({
      ...dir.env,
      KILN_BIN: PRINT_INVOCATION,
      KILN_LOG_FORMAT: 'pretty',
      KILN_INFERENCE_ADDRESS: 'http://0.0.0.0:8080',
      KILN_MANAGEMENT_ADDRESS: 'http://0.0.0.0:8081',
      KILN_METRICS_ADDRESS: 'http://0.0.0.0:8082',
      KILN_GRPC_ADDRESS: '0.0.0.0:8085',
      KILN_TS_GRPC_INFERENCE_ADDRESS: '0.0.0.0:7070',
      KILN_TS_GRPC_MANAGEMENT_ADDRESS: '0.0.0.0:7071',
      KILN_MODEL_STORE: dir.models,
      KILN_MODELS: 'all',
      KILN_TOKEN_FILE: tokenFile,
    });
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const token = readFileSync(tokenFile, 'utf8');
    expect(token).toMatch(/^[0-9a-f]{64}\n$/);
    expect(first.stderr).toContain(`one was generated in ${tokenFile}`);
    expect(first.stderr).toContain(`docker exec <container> cat ${tokenFile}`);
    expect(first.stderr.trim().split('\n')).toHaveLength(1);

    const second = invocation(['serve', '--workers', '2'], dir.env);
    expect(second.argv).toEqual(['serve', '--workers', '2']);
    expect(second.env.KILN_TOKEN_FILE).toBe(tokenFile);
    expect(readFileSync(tokenFile, 'utf8')).toBe(token);
    expect(second.stderr).toContain('generated at an earlier start');

    // Flags alone are kiln serve's.
    expect(invocation(['--workers', '2', '--isolation=process'], dir.env).argv).toEqual(['serve', '--workers', '2', '--isolation=process']);
  });

  test("KServe's layout: TS_CONFIG_FILE names config/config.properties, whose addresses and models are not overridden", () => {
    const dir = layout();
    mkdirSync(join(dir.models, 'config'));
    mkdirSync(join(dir.models, 'model-store'));
    writeFileSync(join(dir.models, 'config/config.properties'), KSERVE_PROPERTIES);
    const run = invocation([], dir.env);
    expect(run.env.TS_CONFIG_FILE).toBe(join(dir.models, 'config/config.properties'));
    // inference_address, management_address (dropped by Kiln: it is inference_address's port) and
    // metrics_address are the file's to decide, and so are model_store and model_snapshot, and
    // TorchServe's gRPC addresses (grpc_inference_port, grpc_management_port: on 127.0.0.1, where
    // KServe's wrapper calls them).
    const fileKeys = spawnSync(process.execPath, [join(DOCKER, 'config-keys.mjs'), run.env.TS_CONFIG_FILE!, 'properties'], {
      encoding: 'utf8',
    });
    expect(fileKeys.stdout.trim().split(' ')).toEqual(
      expect.arrayContaining(['inferenceAddress', 'tsGrpcInferenceAddress', 'tsGrpcManagementAddress']),
    );
    for (const name of [
      'KILN_INFERENCE_ADDRESS',
      'KILN_MANAGEMENT_ADDRESS',
      'KILN_METRICS_ADDRESS',
      'KILN_TS_GRPC_INFERENCE_ADDRESS',
      'KILN_TS_GRPC_MANAGEMENT_ADDRESS',
      'KILN_MODELS',
      'KILN_MODEL_STORE',
    ]) {
      expect(run.env[name], name).toBeUndefined();
    }
    expect(run.env.KILN_TOKEN_FILE).toBe(join(dir.state, 'token'));
    // The file's REST address is KServe's 8085, gRPC's default port: gRPC is off unless asked for.
    expect(run.env.KILN_GRPC_ADDRESS).toBe('off');
    expect(run.stderr).toContain("KServe's layout");

    // Without the gRPC keys, TorchServe's gRPC APIs stay on the server's 127.0.0.1 defaults all the same.
    writeFileSync(join(dir.models, 'config/config.properties'), KSERVE_PROPERTIES.replace(/^grpc_.*\n/gm, ''));
    const withoutGrpcKeys = invocation([], dir.env);
    expect(withoutGrpcKeys.env.TS_CONFIG_FILE).toBe(join(dir.models, 'config/config.properties'));
    expect(withoutGrpcKeys.env.KILN_TS_GRPC_INFERENCE_ADDRESS).toBeUndefined();
    expect(withoutGrpcKeys.env.KILN_TS_GRPC_MANAGEMENT_ADDRESS).toBeUndefined();
  });

  test('a config file fills only what it leaves out; a variable, a flag or a secret file is kept', () => {
    const dir = layout();
    writeFileSync(join(dir.root, 'kiln.yaml'), `inferenceAddress: http://0.0.0.0:9000\ntokenFile: ${join(dir.root, 'token')}\n`);
    const withYaml = invocation(['serve', '--config', join(dir.root, 'kiln.yaml')], dir.env);
    expect(withYaml.env.KILN_INFERENCE_ADDRESS).toBeUndefined();
    expect(withYaml.env.KILN_MANAGEMENT_ADDRESS).toBe('http://0.0.0.0:8081');
    expect(withYaml.env.KILN_MODELS).toBe('all');
    expect(withYaml.env.KILN_TOKEN_FILE).toBeUndefined();
    expect(existsSync(join(dir.state, 'token'))).toBe(false);
    // The file moved the inference API: TorchServe's gRPC APIs stay where the file (or the server) puts them.
    expect(withYaml.env.KILN_TS_GRPC_INFERENCE_ADDRESS).toBeUndefined();
    expect(withYaml.env.KILN_TS_GRPC_MANAGEMENT_ADDRESS).toBeUndefined();

    // Each of TorchServe's gRPC addresses yields to the file (either key of its pair) or its variable alone.
    const grpcDir = layout();
    writeFileSync(join(grpcDir.root, 'grpc.yaml'), 'tsGrpcInferenceAddress: 127.0.0.1:7070\n');
    const grpcYaml = invocation(['--config', join(grpcDir.root, 'grpc.yaml')], grpcDir.env);
    expect(grpcYaml.env.KILN_TS_GRPC_INFERENCE_ADDRESS).toBeUndefined();
    expect(grpcYaml.env.KILN_TS_GRPC_MANAGEMENT_ADDRESS).toBe('0.0.0.0:7071');
    expect(grpcYaml.env.KILN_INFERENCE_ADDRESS).toBe('http://0.0.0.0:8080');
    writeFileSync(join(grpcDir.root, 'grpc.properties'), 'grpc_management_address=127.0.0.1\n');
    const grpcProperties = invocation(['--ts-config', join(grpcDir.root, 'grpc.properties')], grpcDir.env);
    expect(grpcProperties.env.KILN_TS_GRPC_INFERENCE_ADDRESS).toBe('0.0.0.0:7070');
    expect(grpcProperties.env.KILN_TS_GRPC_MANAGEMENT_ADDRESS).toBeUndefined();
    const grpcVariable = invocation([], { ...grpcDir.env, KILN_TS_GRPC_INFERENCE_ADDRESS: 'off' });
    expect(grpcVariable.env.KILN_TS_GRPC_INFERENCE_ADDRESS).toBe('off');
    expect(grpcVariable.env.KILN_TS_GRPC_MANAGEMENT_ADDRESS).toBe('0.0.0.0:7071');

    const given = invocation(['--models=a.mar', '--token-file', '/t'], {
      ...dir.env,
      KILN_INFERENCE_ADDRESS: 'http://0.0.0.0:7000',
      KILN_CONFIG: join(dir.root, 'missing.yaml'), // the server reports it; the entrypoint goes on
    });
    expect(given.env.KILN_INFERENCE_ADDRESS).toBe('http://0.0.0.0:7000');
    expect(given.env.KILN_MODELS).toBeUndefined();
    expect(given.env.KILN_MODEL_STORE).toBeUndefined();
    expect(given.env.KILN_TOKEN_FILE).toBeUndefined();

    writeFileSync(join(dir.root, 'secret'), 'from-a-secret-0123456789\n');
    const secret = invocation([], { ...dir.env, KILN_SECRET_FILE: join(dir.root, 'secret') });
    expect(secret.env.KILN_TOKEN_FILE).toBe(join(dir.root, 'secret'));
    expect(secret.stderr).toBe('');

    const none = invocation([], { ...dir.env, KILN_GENERATE_TOKEN: 'false' });
    expect(none.env.KILN_TOKEN_FILE).toBeUndefined();
    expect(none.stderr).toContain('no token: KILN_GENERATE_TOKEN=false');
    expect(existsSync(join(dir.state, 'token'))).toBe(false);
  });

  test("config-keys.mjs reports each config.properties key whose option the entrypoint fills in, as the server's table maps it", () => {
    const consulted = new Set([...readFileSync(ENTRYPOINT, 'utf8').matchAll(/file_sets (\w+)/g)].map((m) => m[1]!));
    // Each row of the server's table: the TorchServe key, and the Kiln option it becomes (the first `name`).
    const rows = [...renderTorchServeKeysTable().matchAll(/^\| `(\w+)` \| `(\w+)`/gm)].map((m) => [m[1]!, m[2]!] as const);
    const filled = rows.filter(([, option]) => consulted.has(option));
    expect(filled.map(([key]) => key)).toEqual(
      expect.arrayContaining(['inference_address', 'load_models', 'grpc_inference_port', 'grpc_management_address']),
    );
    const dir = layout();
    for (const [key, option] of filled) {
      const file = join(dir.root, `${key}.properties`);
      writeFileSync(file, `${key}=1\n`);
      const keys = spawnSync(process.execPath, [join(DOCKER, 'config-keys.mjs'), file, 'properties'], { encoding: 'utf8' });
      expect(keys.stdout, key).toBe(`${option}\n`);
    }
  });

  test('other kiln commands and other programs run as they are', () => {
    const dir = layout();
    const inspect = invocation(['inspect', '/mnt/models/x.mar'], dir.env);
    expect(inspect.argv).toEqual(['inspect', '/mnt/models/x.mar']);
    expect(inspect.env).toEqual({ ...dir.env, KILN_BIN: PRINT_INVOCATION, KILN_LOG_FORMAT: 'pretty' });
    const shell = spawnSync('sh', [ENTRYPOINT, 'sh', '-c', 'echo "a shell: $0"'], { env: cleanEnv(dir.env), encoding: 'utf8' });
    expect(shell.stdout).toBe('a shell: sh\n');
  });
});

describe('entrypoint.sh serves', () => {
  test('a plain models folder, with a generated token that the API and healthcheck.mjs use', async () => {
    const dir = layout();
    copyFileSync(linearArchive(dir.root, 'linear', 'batchSize: 1\n'), join(dir.models, 'linear.mar'));
    const kiln = await startEntrypoint({ ...dir.env, ...ZERO_ADDRESSES });
    const tokenFile = join(dir.state, 'token');
    const token = readFileSync(tokenFile, 'utf8').trim();
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(kiln.output()).toMatch(new RegExp(`auth: the token from the file ${escape(tokenFile)} \\(KILN_TOKEN_FILE\\)`));
    expect(kiln.output()).toMatch(/model linear 1\.0 ready/);

    const row = [1, -2, 0.5, 3];
    const refused = await post(`${kiln.inference}/predictions/linear`, { row });
    expect(refused.status).toBe(401);
    expect(refused.json.errorCode).toBe('KILN_ERR_UNAUTHORIZED');
    const answer = await post(
      `${kiln.inference}/predictions/linear`,
      { row },
      { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    );
    expect(answer.status).toBe(200);
    expect(answer.json.y).toEqual(linearExpected(row).map(Math.fround));

    // In the image the check sees only the container's environment: it finds the generated token in KILN_STATE_DIR.
    const url = { KILN_HEALTHCHECK_URL: kiln.inference, KILN_SECRET_FILE: join(dir.root, 'no-secret') };
    const healthy = healthcheck({ ...url, KILN_STATE_DIR: dir.state });
    expect(healthy, healthy.output).toMatchObject({ status: 0 });
    expect(healthy.output).toContain('200 {"status":"Healthy"}');
    expect(healthcheck({ ...url, KILN_TOKEN_FILE: tokenFile }).status).toBe(0);
    const noToken = healthcheck({ ...url, KILN_STATE_DIR: join(dir.root, 'elsewhere') });
    expect(noToken.status).toBe(1);
    expect(noToken.output).toContain('401');

    expect(await kiln.stop()).toBe(0);
    const down = healthcheck({ ...url, KILN_STATE_DIR: dir.state });
    expect(down.status).toBe(1);
    expect(down.output).toMatch(/^unhealthy: /);
  });

  test("KServe's layout, with the token from a secret file: the file's addresses and model_snapshot are used", async () => {
    const dir = layout();
    const store = join(dir.models, 'model-store');
    mkdirSync(join(dir.models, 'config'));
    mkdirSync(store);
    copyFileSync(linearArchive(dir.root, 'linear', 'batchSize: 1\n'), join(store, 'linear.mar'));
    const properties = KSERVE_PROPERTIES.replace(/http:\/\/0\.0\.0\.0:\d+/g, 'http://127.0.0.1:0')
      .replace(/^(grpc_\w+_port)=\d+$/gm, '$1=0')
      .replace('/mnt/models/model-store', store);
    writeFileSync(join(dir.models, 'config/config.properties'), properties);
    const secret = join(dir.root, 'kiln-token');
    writeFileSync(secret, 'a-token-from-a-kubernetes-secret\n');
    // The file gives the management API inference_address's port, which Kiln leaves out (its default
    // would be 8081 on this shared machine): a free port instead.
    const kiln = await startEntrypoint({ ...dir.env, KILN_SECRET_FILE: secret, KILN_MANAGEMENT_ADDRESS: 'http://127.0.0.1:0' });
    expect(kiln.output()).toContain("KServe's layout");
    expect(kiln.output()).toMatch(new RegExp(`auth: the token from the file ${escape(secret)} \\(KILN_TOKEN_FILE\\)`));
    expect(kiln.output()).toContain('install_py_dep_per_model is not used');
    // TorchServe's gRPC APIs where the file puts them, on loopback, not 0.0.0.0.
    expect(kiln.output()).toMatch(/torchserve grpc inference API listening on 127\.0\.0\.1:\d+/);
    expect(kiln.output()).toMatch(/torchserve grpc management API listening on 127\.0\.0\.1:\d+/);
    expect(existsSync(join(dir.state, 'token'))).toBe(false);

    const row = [2, 0, -1, 0.25];
    const headers = { 'content-type': 'application/json', authorization: 'Bearer a-token-from-a-kubernetes-secret' };
    const answer = await post(
      `${kiln.inference}/v2/models/linear/infer`,
      { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: row }], outputs: [{ name: 'y' }] },
      headers,
    );
    expect(answer.status).toBe(200);
    expect(answer.json.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [1, 3], data: linearExpected(row).map(Math.fround) }]);
    expect(healthcheck({ KILN_HEALTHCHECK_URL: kiln.inference, KILN_SECRET_FILE: secret }).status).toBe(0);
    expect(await kiln.stop()).toBe(0);
  });
});

const hasPodman = spawnSync('podman', ['--version']).status === 0;
const image = process.env.KILN_TEST_IMAGE;

// Needs podman and an image built from deploy/docker/Dockerfile (building takes minutes and the npm
// registry), named by KILN_TEST_IMAGE: `podman build -f deploy/docker/Dockerfile -t kiln .`, then
// `KILN_TEST_IMAGE=kiln npx vitest run test/deploy`. Skipped, and reported as skipped, elsewhere.
test.skipIf(!hasPodman || image === undefined)('the built image serves a mounted models folder, with its generated token', async () => {
  const dir = layout();
  copyFileSync(linearArchive(dir.root, 'linear', 'batchSize: 1\n'), join(dir.models, 'linear.mar'));
  const name = `kiln-test-${process.pid}`;
  const port = 18080 + (process.pid % 1000);
  const started = spawnSync(
    'podman',
    ['run', '-d', '--rm', '--name', name, '-p', `127.0.0.1:${port}:8080`, '-v', `${dir.models}:/mnt/models:ro`, image!],
    {
      encoding: 'utf8',
    },
  );
  expect(started.status, started.stderr).toBe(0);
  onTestFinished(() => {
    spawnSync('podman', ['rm', '-f', '-t', '0', name]);
  });
  const logs = () => spawnSync('podman', ['logs', name], { encoding: 'utf8' });
  const deadline = Date.now() + 60_000;
  while (!/Kiln is ready/.test(logs().stdout)) {
    if (Date.now() > deadline) throw new Error(`the container did not get ready:\n${logs().stdout}${logs().stderr}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const token = spawnSync('podman', ['exec', name, 'cat', '/var/lib/kiln/token'], { encoding: 'utf8' }).stdout.trim();
  expect(token).toMatch(/^[0-9a-f]{64}$/);
  expect(spawnSync('podman', ['exec', name, 'id', '-u'], { encoding: 'utf8' }).stdout.trim()).toBe('10001');
  const row = [1, -2, 0.5, 3];
  const answer = await post(
    `http://127.0.0.1:${port}/predictions/linear`,
    { row },
    { 'content-type': 'application/json', authorization: `Bearer ${token}` },
  );
  expect(answer.json.y).toEqual(linearExpected(row).map(Math.fround));
  expect(spawnSync('podman', ['healthcheck', 'run', name]).status).toBe(0);
});
