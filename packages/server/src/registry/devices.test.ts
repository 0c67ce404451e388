import { resolveModelConfig, type ProviderReport } from '@kiln/handler-sdk/runtime';
import { describe, expect, test } from 'vitest';
import { DevicePlanner, roundRobin, serverDevices } from './devices.js';

/** A probe's report: `loadable` names the providers that load (chooseProviders' own tests cover the reasons). */
const report = (...loadable: string[]): ProviderReport => ({
  onnxruntime: '1.30.0',
  providers: ['cpu', 'cuda'].map((name) => ({ name, bundled: name === 'cpu', loadable: loadable.includes(name) })),
});

const gpuModel = (extra: object = {}) => resolveModelConfig({ deviceType: 'gpu', ...extra });

describe('roundRobin and DevicePlanner: GPUs for workers', () => {
  test('the n-th worker takes the next GPU of the list, from the offset', () => {
    expect([0, 1, 2, 3, 4].map((i) => roundRobin([2, 5], 0)(i).id)).toEqual([2, 5, 2, 5, 2]);
    expect([0, 1, 2].map((i) => roundRobin([0, 1, 2, 3], 3)(i).id)).toEqual([3, 0, 1]);
  });

  const planner = (gpus: number, loadable = ['cpu', 'cuda']) => {
    const warnings: string[] = [];
    const probes: string[][] = [];
    const planned = new DevicePlanner({
      probe: async (names) => {
        probes.push([...names]);
        return report(...loadable);
      },
      gpuCount: async () => gpus,
      warn: (message) => warnings.push(message),
    });
    return { planned, warnings, probes };
  };

  test("models without deviceIds share the server's GPUs: each starts where the one before left off", async () => {
    const { planned } = planner(4);
    const a = await planned.plan('a', gpuModel({ minWorkers: 3 }));
    const b = await planned.plan('b', gpuModel({ minWorkers: 2 }));
    const c = await planned.plan('c', gpuModel({ minWorkers: 1 }));
    expect([0, 1, 2].map((i) => a.device(i).id)).toEqual([0, 1, 2]);
    expect([0, 1].map((i) => b.device(i).id)).toEqual([3, 0]);
    expect(c.device(0)).toEqual({ type: 'gpu', id: 1 });
  });

  test("a model's deviceIds are its own, round-robin from the first", async () => {
    const { planned } = planner(8);
    await planned.plan('a', gpuModel({ minWorkers: 2 }));
    const b = await planned.plan('b', gpuModel({ minWorkers: 3, deviceIds: [6, 7] }));
    expect([0, 1, 2].map((i) => b.device(i).id)).toEqual([6, 7, 6]);
  });

  test('no GPU counted and none listed: GPU 0, the provider default', async () => {
    const { planned } = planner(0);
    expect((await planned.plan('a', gpuModel())).device(3)).toEqual({ type: 'gpu', id: 0 });
  });

  test('a CPU model is not probed and its workers are on the CPU; a GPU model falling back is on the CPU too', async () => {
    const { planned, probes, warnings } = planner(2, ['cpu']);
    const cpu = await planned.plan('cpu-model', resolveModelConfig({}));
    expect(probes).toEqual([]);
    expect(cpu.device(0)).toEqual({ type: 'cpu', id: undefined });
    const fell = await planned.plan('gpu-model', gpuModel());
    expect(probes).toEqual([['cuda', 'cpu']]);
    expect(fell.device(0)).toEqual({ type: 'cpu', id: undefined });
    expect(fell.requested).toEqual({ deviceType: 'gpu', executionProviders: ['cuda', 'cpu'] });
    expect(warnings).toHaveLength(1);
  });
});

describe('deviceType: gpu defaults', () => {
  test('batching on (8, auto) and one intra-op thread, unless the file says', () => {
    expect(resolveModelConfig({ deviceType: 'gpu' })).toMatchObject({
      batchSize: 8,
      maxBatchDelayMs: 'auto',
      intraOpNumThreads: 1,
      executionProviders: ['cuda', 'cpu'],
      fallback: true,
    });
    expect(resolveModelConfig({ deviceType: 'gpu', batchSize: 1, maxBatchDelay: 10, intraOpNumThreads: 4 })).toMatchObject({
      batchSize: 1,
      maxBatchDelayMs: 10,
      intraOpNumThreads: 4,
    });
    expect(resolveModelConfig({})).toMatchObject({ batchSize: 1, maxBatchDelayMs: 100, intraOpNumThreads: undefined });
  });
});

describe('serverDevices: how many GPUs the server shares out', () => {
  const log = { info: () => {}, warn: () => {}, error: () => {} };
  const gpusOf = async (numberOfGpu: number | undefined, env: NodeJS.ProcessEnv) => {
    const { planner } = serverDevices({ numberOfGpu }, log, env);
    const plan = await planner.plan('m', resolveModelConfig({ deviceType: 'gpu', executionProviders: ['cpu'], minWorkers: 4 }));
    return [0, 1, 2, 3].map((i) => plan.device(i).id);
  };

  test('CUDA_VISIBLE_DEVICES counts, as TorchServe counts it; numberOfGpu wins over it', async () => {
    // PATH without nvidia-smi: the count can only come from the variable or the option.
    expect(await gpusOf(undefined, { PATH: '/nonexistent', CUDA_VISIBLE_DEVICES: '4,6' })).toEqual([0, 1, 0, 1]);
    expect(await gpusOf(3, { PATH: '/nonexistent', CUDA_VISIBLE_DEVICES: '4,6' })).toEqual([0, 1, 2, 0]);
    expect(await gpusOf(undefined, { PATH: '/nonexistent' })).toEqual([0, 0, 0, 0]);
  });
});
