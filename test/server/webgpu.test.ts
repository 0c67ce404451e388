import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fakeNvidiaSmi } from '../support/fake-commands.js';
import { kiln as kilnCli } from '../support/kiln.js';
import { linearExpected } from '../support/onnx-models.js';
import { scrape } from '../support/scrape.js';
import { linearArchive, post, startKiln, until, type RunningKiln } from '../support/server.js';
import { noSoftVulkan, requireSoftVulkan } from '../support/soft-vulkan.js';

/*
 * Kiln's GPU path on a provider that is not the CPU's, for real: onnxruntime-node's WebGPU provider
 * on Mesa's software Vulkan driver (scripts/soft-vulkan.sh). The sessions run WebGPU's kernels
 * (WGSL shaders through Dawn and Vulkan), not ONNX Runtime's CPU ones, so the answers are checked
 * against y = xW + b computed here; the speed is a CPU's, and nothing here times it.
 */

/** ONNX Runtime's own failure output: a provider that loads prints none. */
const RAW_ORT = /\[E:onnxruntime|provider_bridge_ort|Failed to load library/;
const ROWS = [
  [1, 2, 3, 4],
  [0, -1, 0.5, 2],
  [-3, 0.25, 7, -1],
  [10, 0, 0, 0],
  [0, 0, 0, 1],
  [2.5, -2.5, 1, 0],
  [-1, -1, -1, -1],
  [0.1, 0.2, 0.3, 0.4],
];

function expectClose(actual: number[], expected: number[]) {
  expect(actual).toHaveLength(expected.length);
  for (const [i, value] of expected.entries()) expect(Math.abs(actual[i]! - value)).toBeLessThan(1e-3);
}

describe.skipIf(noSoftVulkan)('a model on WebGPU (Mesa software Vulkan)', () => {
  let kiln: RunningKiln;
  let env: NodeJS.ProcessEnv;
  const dir = mkdtempSync(join(tmpdir(), 'kiln-webgpu-'));
  beforeAll(async () => {
    env = requireSoftVulkan();
    const config = 'deviceType: gpu\nexecutionProviders: [webgpu]\nfallback: false\nbatchSize: 8\nmaxBatchDelay: 200\n';
    linearArchive(dir, 'linear', config, 'wg');
    linearArchive(dir, 'linear', `${config}isolation: process\nminWorkers: 2\n`, 'wgp');
    kiln = await startKiln(['--model-store', 'store', '--models', 'wg=wg.mar', 'wgp=wgp.mar'], {
      cwd: dir,
      // nvidia-smi, faked: GPU 0's usage in describe.
      env: { ...env, KILN_PROBE_PROVIDERS: 'true', PATH: `${fakeNvidiaSmi(join(dir, 'bin'))}:${process.env.PATH}` },
      shared: true,
    });
  }, 60_000);
  afterAll(async () => {
    await kiln?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('answers y = xW + b from WebGPU within 1e-3, eight concurrent requests batched together', async () => {
    const answers = await Promise.all(ROWS.map((row) => post(`${kiln.inference}/predictions/wg`, { row })));
    for (const [i, answer] of answers.entries()) {
      expect(answer.status).toBe(200);
      expectClose(answer.json.y as number[], linearExpected(ROWS[i]!));
    }
    const samples = await scrape(kiln);
    const batches = samples.get('kiln_batch_size_count{model_name="wg",model_version="1.0"}')!;
    expect(samples.get('kiln_batch_size_sum{model_name="wg",model_version="1.0"}')).toBe(ROWS.length);
    expect(batches).toBeLessThan(ROWS.length);
  });

  test('in worker processes too: two processes on two GPUs, both on WebGPU, answering within 1e-3', async () => {
    const answers = await Promise.all(ROWS.map((row) => post(`${kiln.inference}/predictions/wgp`, { row })));
    for (const [i, answer] of answers.entries()) {
      expect(answer.status).toBe(200);
      expectClose(answer.json.y as number[], linearExpected(ROWS[i]!));
    }
    const [described] = (await (await fetch(`${kiln.management}/models/wgp`)).json()) as Record<string, unknown>[];
    const workers = described!.workers as { pid: number; executionProvider: string; deviceId: number }[];
    expect(workers.map((w) => w.executionProvider)).toEqual(['webgpu', 'webgpu']);
    // The fake nvidia-smi lists two GPUs: the model's two workers take one each.
    expect(workers.map((w) => w.deviceId).sort()).toEqual([0, 1]);
    expect(new Set(workers.map((w) => w.pid)).size).toBe(2);
    expect(workers.some((w) => w.pid === kiln.child.pid)).toBe(false);
  });

  test('describe, the v2 config, the status page and the metrics say webgpu, on a GPU', async () => {
    const [described] = (await (await fetch(`${kiln.management}/models/wg`)).json()) as Record<string, unknown>[];
    expect(described).toMatchObject({
      deviceType: 'gpu',
      executionProviders: ['webgpu'],
      requested: { deviceType: 'gpu', executionProviders: ['webgpu'] },
    });
    const workers = described!.workers as Record<string, unknown>[];
    expect(workers).toHaveLength(1);
    expect(workers[0]).toMatchObject({
      gpu: true,
      executionProvider: 'webgpu',
      deviceId: 0,
      gpuUsage: 'gpuId::0 utilization.gpu [%]::35 % utilization.memory [%]::12 % memory.used [MiB]::4023 MiB',
    });

    const config = (await (await fetch(`${kiln.inference}/v2/models/wg/config`)).json()) as Record<string, unknown>;
    expect(config.instance_group).toEqual([{ name: 'wg', kind: 'KIND_GPU', count: 1, gpus: [0] }]);
    expect(config.parameters).toEqual({ execution_providers: { string_value: 'webgpu' } });

    const status = (await (await fetch(`${kiln.management}/status`)).json()) as { models: Record<string, unknown>[] };
    expect(status.models.find((m) => m.name === 'wg')).toMatchObject({ executionProvider: 'webgpu', gpus: [0] });

    const samples = await scrape(kiln);
    expect(samples.get('kiln_model_execution_provider{model_name="wg",model_version="1.0",provider="webgpu",device="gpu"}')).toBe(1);
  });

  test('logs webgpu among the providers that load and as what the model runs on, warns of no fallback, and prints no ONNX Runtime failure', async () => {
    await until(() => kiln.output().includes('execution providers:'));
    expect(kiln.output()).toMatch(/execution providers: cpu, webgpu; not available: cuda \(/);
    expect(kiln.output()).toMatch(/model wg 1\.0 ready: 1 thread worker on webgpu \(GPU 0\), batchSize 8, maxBatchDelay 200 ms/);
    expect(kiln.output()).not.toContain('runs on the CPU');
    expect(kiln.output()).not.toMatch(RAW_ORT);
  });

  test('kiln predict runs the archive on WebGPU too, with no warning; kiln doctor lists webgpu as loadable', () => {
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ row: ROWS[2] }));
    const run = kilnCli(['predict', 'store/wg.mar', 'a.json', '--json'], { cwd: dir, env });
    expect(run.status, run.stderr).toBe(0);
    const [result] = JSON.parse(run.stdout) as { status: number; body: { y: number[] } }[];
    expect(result!.status).toBe(200);
    expectClose(result!.body.y, linearExpected(ROWS[2]!));
    expect(run.stderr).not.toContain('[warn]');
    expect(run.stderr).not.toMatch(RAW_ORT);

    const doctor = kilnCli(['doctor', '--json'], { cwd: dir, env });
    expect(doctor.status, doctor.stderr).toBe(0);
    const report = JSON.parse(doctor.stdout) as { providers: { name: string; loadable: boolean }[] };
    expect(report.providers.find((p) => p.name === 'webgpu')).toMatchObject({ loadable: true });
  });
});
