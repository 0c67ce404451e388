import type { GpuUsage } from '@kiln/handler-sdk/runtime';
import { describe, expect, test } from 'vitest';
import { GpuUsageReader, gpuUsageText } from './gpu-usage.js';
import { ServerMetrics } from './server-metrics.js';

const H200: GpuUsage = {
  index: 0,
  uuid: 'GPU-5f1c2a',
  utilizationGpu: 35,
  utilizationMemory: 12,
  memoryUsedMib: 4023,
  memoryTotalMib: 143771,
};
const MIG: GpuUsage = {
  index: 1,
  uuid: 'MIG-77aa01',
  utilizationGpu: undefined,
  utilizationMemory: undefined,
  memoryUsedMib: 512,
  memoryTotalMib: 1024,
};

/** A reader over a scripted nvidia-smi, counting its calls. */
function scripted(answers: Awaited<ReturnType<GpuUsageReader['usage']>>[] | 'not found' | 'failed') {
  let calls = 0;
  const reader = new GpuUsageReader(async () => {
    calls++;
    if (answers === 'not found') return { nvidiaSmi: 'not found', gpus: [] };
    if (answers === 'failed') return { nvidiaSmi: 'failed', gpus: [], error: 'Failed to initialize NVML: Driver/library version mismatch' };
    return { nvidiaSmi: 'listed', gpus: answers[Math.min(calls - 1, answers.length - 1)]! };
  });
  return { reader, calls: () => calls };
}

describe('GpuUsageReader', () => {
  test('asks nvidia-smi at most once a second, however many ask', async () => {
    const { reader, calls } = scripted([[H200], [{ ...H200, utilizationGpu: 90 }]]);
    expect(await Promise.all([reader.usage(1000), reader.usage(1500), reader.usage(1999)])).toEqual([[H200], [H200], [H200]]);
    expect(calls()).toBe(1);
    expect((await reader.usage(2000))[0]!.utilizationGpu).toBe(90);
    expect(calls()).toBe(2);
  });

  test('without nvidia-smi, asks once and never again', async () => {
    const { reader, calls } = scripted('not found');
    expect(await reader.usage(0)).toEqual([]);
    expect(await reader.usage(10_000_000)).toEqual([]);
    expect(calls()).toBe(1);
  });

  test('after a failure, waits a minute before asking again', async () => {
    const { reader, calls } = scripted('failed');
    await reader.usage(0);
    await reader.usage(59_999);
    expect(calls()).toBe(1);
    await reader.usage(60_000);
    expect(calls()).toBe(2);
  });
});

test("gpuUsageText: TorchServe's describe string for the worker's GPU, N/A for one nvidia-smi does not list", () => {
  expect(gpuUsageText([H200, MIG], 0)).toBe('gpuId::0 utilization.gpu [%]::35 % utilization.memory [%]::12 % memory.used [MiB]::4023 MiB');
  expect(gpuUsageText([H200, MIG], 1)).toBe('gpuId::1 utilization.gpu [%]::N/A utilization.memory [%]::N/A memory.used [MiB]::512 MiB');
  expect(gpuUsageText([H200], 3)).toBe('N/A');
  expect(gpuUsageText([H200], undefined)).toBe('N/A');
  // Under CUDA_VISIBLE_DEVICES=1, the worker's GPU 0 is nvidia-smi's GPU 1: gpuId is the worker's, the figures GPU 1's.
  expect(gpuUsageText([H200, MIG], 0, ['1'])).toBe(
    'gpuId::0 utilization.gpu [%]::N/A utilization.memory [%]::N/A memory.used [MiB]::512 MiB',
  );
});

describe('the GPU families of /metrics', () => {
  const metrics = (gpus: GpuUsage[], torchserveMetrics: boolean) =>
    new ServerMetrics({
      latencyBuckets: [1],
      batchSizeBuckets: [1],
      torchserveMetrics,
      gpuUsage: scripted([gpus]).reader,
    }).render();

  test("Kiln's in ratios and bytes by gpu and uuid, TorchServe's in percent and MiB by DeviceId; a field without a value has no sample", async () => {
    const text = await metrics([H200, MIG], true);
    const line = (prefix: string) => text.split('\n').filter((l) => l.startsWith(prefix));
    expect(line('kiln_gpu_utilization_ratio{')).toEqual(['kiln_gpu_utilization_ratio{gpu="0",uuid="GPU-5f1c2a"} 0.35']);
    expect(line('kiln_gpu_memory_used_bytes{')).toEqual([
      `kiln_gpu_memory_used_bytes{gpu="0",uuid="GPU-5f1c2a"} ${4023 * 2 ** 20}`,
      `kiln_gpu_memory_used_bytes{gpu="1",uuid="MIG-77aa01"} ${512 * 2 ** 20}`,
    ]);
    expect(line('kiln_gpu_memory_total_bytes{gpu="0"')).toEqual([
      `kiln_gpu_memory_total_bytes{gpu="0",uuid="GPU-5f1c2a"} ${143771 * 2 ** 20}`,
    ]);
    expect(line('GPUUtilization{')).toEqual([expect.stringMatching(/^GPUUtilization\{Level="Host",DeviceId="0",Hostname="[^"]+"\} 35$/)]);
    expect(line('GPUMemoryUsed{')).toHaveLength(2);
    expect(line('GPUMemoryUtilization{')).toEqual([
      expect.stringMatching(new RegExp(`DeviceId="0",Hostname="[^"]+"\\} ${(100 * 4023) / 143771}$`)),
      expect.stringMatching(/DeviceId="1",Hostname="[^"]+"\} 50$/),
    ]);
  });

  test("no GPU listed: no series; TorchServe's families only with torchserveMetrics", async () => {
    const none = await metrics([], true);
    expect(none).toContain('# TYPE kiln_gpu_utilization_ratio gauge');
    expect(none).not.toMatch(/^kiln_gpu_\w+\{/m);
    expect(await metrics([H200], false)).not.toContain('GPUUtilization');
  });
});
