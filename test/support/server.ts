import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { KILN_BIN, REPO_ROOT, kiln } from './kiln.js';
import { linearModel, writeModel, type ModelSpec } from './onnx-models.js';

export interface RunningKiln {
  inference: string;
  management: string;
  metrics: string;
  /** The gRPC API's `host:port`; undefined when a test turned it off. */
  grpc: string | undefined;
  /** TorchServe's gRPC inference and management APIs' `host:port`; undefined when off. */
  tsGrpcInference: string | undefined;
  tsGrpcManagement: string | undefined;
  child: ChildProcess;
  output: () => string;
  /** Sends a signal and resolves with the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Starts the real `kiln serve` on free ports and waits until it says it is ready. */
export async function startKiln(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; waitFor?: RegExp; shared?: boolean } = {},
): Promise<RunningKiln> {
  const child = spawn(
    process.execPath,
    [
      KILN_BIN,
      'serve',
      '--inference-address',
      'http://127.0.0.1:0',
      '--management-address',
      'http://127.0.0.1:0',
      '--metrics-address',
      'http://127.0.0.1:0',
      '--grpc-address',
      '127.0.0.1:0',
      '--ts-grpc-inference-address',
      '127.0.0.1:0',
      '--ts-grpc-management-address',
      '127.0.0.1:0',
      ...args,
    ],
    { cwd: options.cwd ?? REPO_ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  // A server shared by a file's tests (started in beforeAll) is stopped by its afterAll.
  if (options.shared !== true) {
    onTestFinished(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
  }
  const waitFor = options.waitFor ?? /Kiln is ready/;
  const deadline = Date.now() + 30_000;
  while (!waitFor.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`kiln serve did not get ready:\n${output}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const address = (api: string) => new RegExp(`${api} API listening on (http:\\/\\/[^\\s"]+)`).exec(output)![1]!;
  return {
    inference: address('inference'),
    management: address('management'),
    metrics: address('metrics'),
    grpc: /grpc API listening on (\S+)/.exec(output)?.[1],
    tsGrpcInference: /torchserve grpc inference API listening on (\S+)/.exec(output)?.[1],
    tsGrpcManagement: /torchserve grpc management API listening on (\S+)/.exec(output)?.[1],
    child,
    output: () => output,
    stop: async (signal = 'SIGTERM') => {
      child.kill(signal);
      return exited;
    },
  };
}

/** Archives the linear model with one of test/fixtures/handlers and a model-config. Returns the .mar path. */
export function linearArchive(dir: string, handler: string, config: string, name = 'linear', version = '1.0', format = 'default'): string {
  writeModel(dir, 'linear.onnx', linearModel());
  writeFileSync(join(dir, `${name}-config.yaml`), config);
  const run = kiln(
    [
      'archive',
      '--model-name',
      name,
      '-v',
      version,
      '--serialized-file',
      'linear.onnx',
      '--handler',
      join(REPO_ROOT, 'test/fixtures/handlers', `${handler}.ts`),
      '-c',
      `${name}-config.yaml`,
      '--export-path',
      'store',
      '--archive-format',
      format,
      '-f',
    ],
    { cwd: dir },
  );
  if (run.status !== 0) throw new Error(run.stderr);
  return join(dir, 'store', format === 'tgz' ? `${name}.tar.gz` : format === 'no-archive' ? name : `${name}.mar`);
}

/**
 * Archives any model with a built-in handler (`tensor`, ...) or one of test/fixtures/handlers, and a
 * model-config. Returns the .mar path.
 */
export function archiveModel(dir: string, options: { name: string; model: ModelSpec; handler: string; config: string }): string {
  writeModel(dir, `${options.name}.onnx`, options.model);
  writeFileSync(join(dir, `${options.name}-config.yaml`), options.config);
  const handler = /^[a-z_]+$/.test(options.handler) ? options.handler : join(REPO_ROOT, 'test/fixtures/handlers', `${options.handler}.ts`);
  const run = kiln(
    [
      'archive',
      '--model-name',
      options.name,
      '-v',
      '1.0',
      '--serialized-file',
      `${options.name}.onnx`,
      '--handler',
      handler,
      '-c',
      `${options.name}-config.yaml`,
      '--export-path',
      'store',
      '-f',
    ],
    { cwd: dir },
  );
  if (run.status !== 0) throw new Error(run.stderr);
  return join(dir, 'store', `${options.name}.mar`);
}

export async function post(url: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const response = await fetch(url, {
    method: 'POST',
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
    headers,
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json: json as Record<string, unknown> };
}

/** Polls `check` every 20 ms until it holds; throws after `ms` (default 10 s). */
export async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
