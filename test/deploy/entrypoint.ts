import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { onTestFinished } from 'vitest';
import { REPO_ROOT, tempDir } from '../support/kiln.js';

/*
 * Runs deploy/docker/entrypoint.sh and healthcheck.mjs on this machine, as the image would, for
 * docker-image.test.ts: KILN_MODELS_DIR, KILN_STATE_DIR and KILN_SECRET_FILE point them at a
 * temporary folder, and KILN_BIN at this repository's CLI (or at print-invocation.mjs).
 */

export const DOCKER = join(REPO_ROOT, 'deploy/docker');
export const ENTRYPOINT = join(DOCKER, 'entrypoint.sh');
export const HEALTHCHECK = join(DOCKER, 'healthcheck.mjs');
export const CLI = join(REPO_ROOT, 'packages/cli/bin/kiln.js');
/** Prints the arguments and KILN_* variables the entrypoint ran it with, as JSON, instead of serving. */
export const PRINT_INVOCATION = join(REPO_ROOT, 'test/deploy/print-invocation.mjs');

/** KServe's config.properties for TorchServe, as its examples mount it at /mnt/models/config/. */
export const KSERVE_PROPERTIES = [
  'inference_address=http://0.0.0.0:8085',
  'management_address=http://0.0.0.0:8085',
  'metrics_address=http://0.0.0.0:8082',
  'grpc_inference_port=7070',
  'grpc_management_port=7071',
  'enable_metrics_api=true',
  'metrics_format=prometheus',
  'number_of_netty_threads=4',
  'job_queue_size=10',
  'enable_envvars_config=true',
  'install_py_dep_per_model=true',
  'model_store=/mnt/models/model-store',
  'model_snapshot={"name":"startup.cfg","modelCount":1,"models":{"linear":{"1.0":{"defaultVersion":true,"marName":"linear.mar","minWorkers":1,"maxWorkers":1,"batchSize":1,"maxBatchDelay":10,"responseTimeout":120}}}}',
  '',
].join('\n');

/**
 * This process's environment less every KILN_* variable and TS_CONFIG_FILE (a developer's own would
 * change what the entrypoint decides), with this `node` first on PATH; the servers log in the pretty
 * format, as vitest.config.ts asks.
 */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('KILN_') && name !== 'TS_CONFIG_FILE') env[name] = value;
  }
  return { ...env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, KILN_LOG_FORMAT: 'pretty', ...extra };
}

export interface Invocation {
  argv: string[];
  env: Record<string, string>;
  stderr: string;
}

/** Runs entrypoint.sh with `sh`, the kiln CLI replaced by print-invocation.mjs. */
export function invocation(args: string[], env: Record<string, string>): Invocation {
  const run = spawnSync('sh', [ENTRYPOINT, ...args], { env: cleanEnv({ KILN_BIN: PRINT_INVOCATION, ...env }), encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`entrypoint.sh exited ${run.status}:\n${run.stdout}${run.stderr}`);
  return { ...(JSON.parse(run.stdout) as Omit<Invocation, 'stderr'>), stderr: run.stderr };
}

/** A folder laid out as the container sees it: models/ (the /mnt/models mount), state/, and a missing secret. */
export function layout() {
  const root = tempDir('kiln-docker-');
  const models = join(root, 'models');
  const state = join(root, 'state');
  mkdirSync(models);
  return {
    root,
    models,
    state,
    env: { KILN_MODELS_DIR: models, KILN_STATE_DIR: state, KILN_SECRET_FILE: join(root, 'no-secret') },
  };
}

export const ZERO_ADDRESSES = {
  KILN_INFERENCE_ADDRESS: 'http://127.0.0.1:0',
  KILN_MANAGEMENT_ADDRESS: 'http://127.0.0.1:0',
  KILN_METRICS_ADDRESS: 'http://127.0.0.1:0',
  KILN_GRPC_ADDRESS: '127.0.0.1:0',
  KILN_TS_GRPC_INFERENCE_ADDRESS: '127.0.0.1:0',
  KILN_TS_GRPC_MANAGEMENT_ADDRESS: '127.0.0.1:0',
};

export const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export interface Started {
  inference: string;
  management: string;
  output: () => string;
  stop: () => Promise<number | null>;
}

/** Runs entrypoint.sh with the real CLI and waits until the server is ready. */
export async function startEntrypoint(env: Record<string, string>): Promise<Started> {
  const child = spawn('sh', [ENTRYPOINT], { env: cleanEnv({ KILN_BIN: CLI, ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const deadline = Date.now() + 30_000;
  while (!/Kiln is ready/.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the entrypoint's server did not get ready:\n${output}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const address = (api: string) => new RegExp(`${api} API listening on (http:\\/\\/[^\\s"]+)`).exec(output)![1]!;
  return {
    inference: address('inference'),
    management: address('management'),
    output: () => output,
    stop: async () => {
      // `exec` made the shell the server: the signal reaches node, which drains and exits 0.
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Runs healthcheck.mjs as the image's HEALTHCHECK does, with the given environment. */
export function healthcheck(env: Record<string, string>) {
  const run = spawnSync(process.execPath, [HEALTHCHECK], { env: cleanEnv(env), encoding: 'utf8', timeout: 15_000 });
  return { status: run.status, output: run.stdout + run.stderr };
}
