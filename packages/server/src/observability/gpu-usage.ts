import { gpuForOrdinal, readGpuUsage, visibleCudaDevices, type GpuUsage } from '@kiln/handler-sdk/runtime';
import { Gauge, type Registry } from 'prom-client';

/*
 * What the GPUs are doing, from nvidia-smi: the GPU families of /metrics (Kiln's, and TorchServe's
 * GPUUtilization, GPUMemoryUsed and GPUMemoryUtilization), and `gpuUsage` in a GPU worker's
 * describe, in TorchServe's words. nvidia-smi is asked at most once a second however many scrapes
 * and describes ask; on a machine without it, once only.
 */

const MAX_AGE_MS = 1000;
/** After nvidia-smi failed (a driver that is not loaded), how long before it is asked again. */
const RETRY_AFTER_FAILURE_MS = 60_000;

export class GpuUsageReader {
  private last: { at: number; usage: Promise<GpuUsage[]>; failed: boolean } | undefined;
  private absent = false;

  constructor(private readonly read: () => ReturnType<typeof readGpuUsage> = () => readGpuUsage(process.env)) {}

  /** Every GPU's usage, at most a second old: [] without nvidia-smi, or while it fails. */
  usage(now = Date.now()): Promise<GpuUsage[]> {
    if (this.absent) return Promise.resolve([]);
    const last = this.last;
    if (last !== undefined && now - last.at < (last.failed ? RETRY_AFTER_FAILURE_MS : MAX_AGE_MS)) return last.usage;
    const entry = { at: now, failed: false, usage: Promise.resolve<GpuUsage[]>([]) };
    entry.usage = this.read().then((result) => {
      if (result.nvidiaSmi === 'not found') this.absent = true;
      entry.failed = result.nvidiaSmi === 'failed';
      return result.gpus;
    });
    this.last = entry;
    return entry.usage;
  }
}

/** The server's reader: nvidia-smi's facts are the machine's, the same for every registry. */
export const gpuUsage = new GpuUsageReader();

/** CUDA_VISIBLE_DEVICES, read once: a worker's deviceId is an ordinal among these. */
const VISIBLE = visibleCudaDevices(process.env);

/**
 * A GPU worker's `gpuUsage` in describe, as TorchServe writes it:
 * `gpuId::0 utilization.gpu [%]::35 % utilization.memory [%]::12 % memory.used [MiB]::4023 MiB`,
 * `gpuId` being the worker's deviceId, and the figures those of the GPU it is under
 * CUDA_VISIBLE_DEVICES. `N/A` for a GPU nvidia-smi does not list (no nvidia-smi; WebGPU on a driver
 * of another vendor).
 */
export function gpuUsageText(gpus: readonly GpuUsage[], deviceId: number | undefined, visible = VISIBLE): string {
  const gpu = deviceId === undefined ? undefined : gpuForOrdinal(gpus, deviceId, visible);
  if (gpu === undefined) return 'N/A';
  const value = (n: number | undefined, unit: string) => (n === undefined ? 'N/A' : `${n} ${unit}`);
  return `gpuId::${deviceId} utilization.gpu [%]::${value(gpu.utilizationGpu, '%')} utilization.memory [%]::${value(gpu.utilizationMemory, '%')} memory.used [MiB]::${value(gpu.memoryUsedMib, 'MiB')}`;
}

/**
 * The GPU gauges, read from `reader` at each scrape: one series per GPU nvidia-smi lists, none on a
 * machine without it. With `torchserve`, TorchServe's three GPU families too (percent and MiB, by
 * `DeviceId`, as its system metrics write them).
 */
export function registerGpuMetrics(
  registry: Registry,
  reader: GpuUsageReader,
  torchserve: { host: { Level: string; Hostname: string } } | undefined,
): void {
  const registers = [registry];
  const gpuLabels = ['gpu', 'uuid'] as const;
  type Read = (g: GpuUsage) => number | undefined;
  const gauge = (name: string, help: string, labelNames: readonly string[], labels: (g: GpuUsage) => Record<string, string>, read: Read) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        this.reset();
        for (const g of await reader.usage()) {
          const value = read(g);
          if (value !== undefined) this.set(labels(g), value);
        }
      },
    });
  const kiln = (g: GpuUsage) => ({ gpu: String(g.index), uuid: g.uuid });
  const mib = 1024 * 1024;
  gauge(
    'kiln_gpu_utilization_ratio',
    'How busy each GPU was over nvidia-smi’s last sample period: the share of it in which a kernel ran (0 to 1).',
    gpuLabels,
    kiln,
    (g) => (g.utilizationGpu === undefined ? undefined : g.utilizationGpu / 100),
  );
  gauge('kiln_gpu_memory_used_bytes', 'Memory in use on each GPU, by every process on it, from nvidia-smi.', gpuLabels, kiln, (g) =>
    g.memoryUsedMib === undefined ? undefined : g.memoryUsedMib * mib,
  );
  gauge('kiln_gpu_memory_total_bytes', 'Memory of each GPU, from nvidia-smi.', gpuLabels, kiln, (g) =>
    g.memoryTotalMib === undefined ? undefined : g.memoryTotalMib * mib,
  );
  if (torchserve === undefined) return;
  const ts = (g: GpuUsage) => ({ Level: torchserve.host.Level, DeviceId: String(g.index), Hostname: torchserve.host.Hostname });
  const tsLabels = ['Level', 'DeviceId', 'Hostname'] as const;
  gauge('GPUUtilization', 'TorchServe: GPU utilization, in percent.', tsLabels, ts, (g) => g.utilizationGpu);
  gauge('GPUMemoryUsed', 'TorchServe: GPU memory in use, in MiB.', tsLabels, ts, (g) => g.memoryUsedMib);
  gauge('GPUMemoryUtilization', 'TorchServe: GPU memory in use, in percent of the total.', tsLabels, ts, (g) =>
    g.memoryUsedMib === undefined || !g.memoryTotalMib ? undefined : (100 * g.memoryUsedMib) / g.memoryTotalMib,
  );
}
