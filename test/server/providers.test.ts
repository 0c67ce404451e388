import { BaseHandler, tensor, type HandlerContext, type KilnRequest, type Tensors } from '@kiln/handler-sdk';
import { probeProviders, providerSummary } from '@kiln/handler-sdk/runtime';
import { runHandler } from '@kiln/handler-sdk/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FAKE_GPU_USAGE, fakeNvidiaSmi } from '../support/fake-commands.js';
import { linearExpected, linearModel, writeModel } from '../support/onnx-models.js';
import { scrape } from '../support/scrape.js';
import { linearArchive, post, startKiln, until, type RunningKiln } from '../support/server.js';

/*
 * Execution providers, honestly, on this machine: no GPU, and onnxruntime-node installed without its
 * CUDA provider (CI's and every developer's default). A model that asks for the GPU runs on the
 * CPU with one clear warning and says so everywhere; with fallback: false it does not load.
 */

/** ONNX Runtime's own output when a provider fails to load: it must never reach the server's log. */
const RAW_ORT = /\[E:onnxruntime|provider_bridge_ort|Failed to load library|Couldn't load Vulkan/;

describe('probeProviders, on this machine (no GPU, onnxruntime-node without its CUDA provider)', () => {
  test('cpu loads; cuda does not, and says why and what to do', async () => {
    const report = await probeProviders();
    expect(report.onnxruntime).toMatch(/^\d+\.\d+\.\d+$/);
    expect(report.providers.map((p) => p.name)).toEqual(['cpu', 'webgpu', 'cuda', 'tensorrt']);
    expect(report.providers[0]).toEqual({ name: 'cpu', bundled: true, loadable: true });
    expect(report.providers.find((p) => p.name === 'cuda')).toMatchObject({
      bundled: false,
      loadable: false,
      reason: 'onnxruntime-node was installed without its CUDA provider (libonnxruntime_providers_shared.so is missing)',
      fix: expect.stringContaining('npm run install:gpu'),
    });
    expect(providerSummary(report)).toMatch(/^cpu; not available: webgpu \(.+\), cuda \(onnxruntime-node was installed without/);
  });

  test('a provider this build does not have is named as such', async () => {
    const report = await probeProviders(['cpu', 'coreml']);
    expect(report.providers.map((p) => [p.name, p.loadable])).toEqual([
      ['cpu', true],
      ['coreml', false],
    ]);
    expect(report.providers[1]!.reason).toMatch(/has no "coreml" execution provider/);
  });
});

describe('a model that asks for the GPU, on a machine without one', () => {
  let kiln: RunningKiln;
  const dir = mkdtempSync(join(tmpdir(), 'kiln-providers-'));
  beforeAll(async () => {
    linearArchive(dir, 'linear', 'deviceType: gpu\nminWorkers: 2\n', 'ongpu');
    linearArchive(dir, 'linear', 'deviceType: gpu\nfallback: false\n', 'strict');
    kiln = await startKiln(['--model-store', 'store', '--models', 'ongpu=ongpu.mar', '--enable-model-api', '--number-of-gpu', '2'], {
      cwd: dir,
      // An nvidia-smi that lists two busy GPUs: the GPU metrics report them, whatever the models run on.
      env: { KILN_PROBE_PROVIDERS: 'true', PATH: `${fakeNvidiaSmi(join(dir, 'bin'))}:${process.env.PATH}` },
      shared: true,
    });
  });
  afterAll(async () => {
    await kiln?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('answers from the CPU, after one warning that names the missing library and the fix, and none of ONNX Runtime’s own output', async () => {
    const answer = await post(`${kiln.inference}/predictions/ongpu`, { row: [1, 2, 3, 4] });
    expect(answer.status).toBe(200);
    expect(answer.json.y).toEqual(linearExpected([1, 2, 3, 4]).map(Math.fround));
    const warnings = kiln
      .output()
      .split('\n')
      .filter((l) => l.includes('model "ongpu" runs on the CPU'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('none of the execution providers it asks for (cuda) loads on this machine');
    expect(warnings[0]).toContain('libonnxruntime_providers_shared.so is missing');
    expect(warnings[0]).toContain('npm run install:gpu');
    expect(kiln.output()).not.toMatch(RAW_ORT);
  });

  test('logs the providers of this machine once, with each missing one’s reason', async () => {
    await until(() => kiln.output().includes('execution providers:'));
    const lines = kiln
      .output()
      .split('\n')
      .filter((l) => l.includes('execution providers:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/execution providers: cpu; not available: webgpu \(.+\), cuda \(onnxruntime-node was installed without/);
  });

  test('describe, the v2 config, the status page and the metrics show the CPU it runs on, and what was asked for', async () => {
    const [described] = (await (await fetch(`${kiln.management}/models/ongpu`)).json()) as Record<string, unknown>[];
    expect(described).toMatchObject({
      deviceType: 'cpu',
      executionProviders: ['cpu'],
      requested: { deviceType: 'gpu', executionProviders: ['cuda', 'cpu'] },
    });
    const workers = described!.workers as { gpu: boolean; executionProvider: string; deviceId?: number }[];
    expect(workers).toHaveLength(2);
    for (const worker of workers) expect(worker).toMatchObject({ gpu: false, gpuUsage: 'N/A', executionProvider: 'cpu' });
    expect(workers.some((w) => w.deviceId !== undefined)).toBe(false);

    const config = (await (await fetch(`${kiln.inference}/v2/models/ongpu/config`)).json()) as Record<string, unknown>;
    expect(config.instance_group).toEqual([{ name: 'ongpu', kind: 'KIND_CPU', count: 2 }]);
    expect(config.parameters).toEqual({ execution_providers: { string_value: 'cpu' } });

    const status = (await (await fetch(`${kiln.management}/status`)).json()) as { models: Record<string, unknown>[] };
    expect(status.models[0]).toMatchObject({ name: 'ongpu', executionProvider: 'cpu', gpus: [] });

    const samples = await scrape(kiln);
    expect(samples.get('kiln_model_execution_provider{model_name="ongpu",model_version="1.0",provider="cpu",device="cpu"}')).toBe(1);
    expect([...samples.keys()].filter((k) => k.startsWith('kiln_model_execution_provider'))).toHaveLength(1);
  });

  test("the GPU metrics report the GPUs nvidia-smi lists, in Kiln's units and TorchServe's", async () => {
    const samples = await scrape(kiln);
    for (const gpu of FAKE_GPU_USAGE) {
      const labels = `{gpu="${gpu.index}",uuid="${gpu.uuid}"}`;
      expect(samples.get(`kiln_gpu_utilization_ratio${labels}`)).toBe(gpu.utilizationGpu / 100);
      expect(samples.get(`kiln_gpu_memory_used_bytes${labels}`)).toBe(gpu.memoryUsedMib * 2 ** 20);
      expect(samples.get(`kiln_gpu_memory_total_bytes${labels}`)).toBe(gpu.memoryTotalMib * 2 ** 20);
      expect(samples.get(`GPUUtilization{Level="Host",DeviceId="${gpu.index}",Hostname="${hostname()}"}`)).toBe(gpu.utilizationGpu);
      expect(samples.get(`GPUMemoryUsed{Level="Host",DeviceId="${gpu.index}",Hostname="${hostname()}"}`)).toBe(gpu.memoryUsedMib);
    }
  });

  test('fallback: false: the model is not registered, and the answer says what is missing and what to do', async () => {
    const response = await fetch(`${kiln.management}/models?url=strict.mar&initial_workers=1&synchronous=true`, { method: 'POST' });
    const register = { status: response.status, json: (await response.json()) as Record<string, unknown> };
    expect(register.status).toBe(500);
    expect(register.json).toMatchObject({ code: 500, errorCode: 'KILN_ERR_PROVIDER_UNAVAILABLE' });
    expect(String(register.json.message)).toContain(
      'model "strict" asks for cuda with fallback: false, and none of them loads on this machine',
    );
    expect(String(register.json.message)).toContain('libonnxruntime_providers_shared.so is missing');
    expect((await fetch(`${kiln.management}/models/strict`)).status).toBe(404);
    // The server still serves the other model.
    expect((await post(`${kiln.inference}/predictions/ongpu`, { row: [0, 0, 0, 1] })).status).toBe(200);
    expect(kiln.output()).not.toMatch(RAW_ORT);
  });
});

describe('runHandler (the SDK testing API) with a config that asks for the GPU', () => {
  test('the handler sees the providers that load here, and the warning goes to the log sink', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-providers-sdk-'));
    try {
      const model = writeModel(dir, 'linear.onnx', linearModel());
      const seen: { level: string; message: string }[] = [];
      let providers: readonly string[] = [];
      let device = '';
      class Linear extends BaseHandler<{ row: number[] }, number[]> {
        override async initialize(context: HandlerContext): Promise<void> {
          providers = context.executionProviders;
          device = context.device.type;
          await super.initialize(context);
        }
        override preprocess(request: KilnRequest<{ row: number[] }>): Tensors {
          return { x: tensor('float32', request.json!.row, [4]) };
        }
        override postprocess(output: Tensors): number[] {
          return [...(output.y!.data as Float32Array)];
        }
      }
      const [result] = await runHandler(Linear, [{ json: { row: [1, 2, 3, 4] } }], {
        modelPath: model,
        config: { deviceType: 'gpu' },
        logSink: (level, message) => seen.push({ level, message }),
      });
      expect(result!.json).toEqual(linearExpected([1, 2, 3, 4]).map(Math.fround));
      expect(providers).toEqual(['cpu']);
      expect(device).toBe('cpu');
      expect(seen).toEqual([{ level: 'warn', message: expect.stringContaining('model "test-model" runs on the CPU') }]);
      expect(seen[0]!.message).toContain('libonnxruntime_providers_shared.so is missing');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
