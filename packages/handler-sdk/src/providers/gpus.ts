import { execFile } from 'node:child_process';

/** One NVIDIA GPU, as nvidia-smi lists it. */
export interface NvidiaGpu {
  index: number;
  name: string;
  memoryMib: number;
  driver: string;
}

export interface NvidiaGpuReport {
  /** `listed`: nvidia-smi answered (maybe with no GPU); `not found`: not on PATH; `failed`: it ran and failed. */
  nvidiaSmi: 'listed' | 'not found' | 'failed';
  gpus: NvidiaGpu[];
  /** What nvidia-smi said when it failed: in a container without the driver, that it cannot talk to it. */
  error?: string;
}

const QUERY = ['--query-gpu=index,name,memory.total,driver_version', '--format=csv,noheader'];
const NVIDIA_SMI_TIMEOUT_MS = 10_000;

/**
 * The GPUs nvidia-smi sees. Told apart: no nvidia-smi at all, and an nvidia-smi that fails (the
 * driver's tools are there but the driver or the device is not), because the fixes differ.
 */
export async function listNvidiaGpus(env: NodeJS.ProcessEnv): Promise<NvidiaGpuReport> {
  const { nvidiaSmi, stdout, error } = await nvidiaSmiQuery(QUERY, env);
  return { nvidiaSmi, gpus: nvidiaSmi === 'listed' ? parseNvidiaSmi(stdout) : [], ...(error === undefined ? {} : { error }) };
}

/** What one GPU is doing now, as nvidia-smi reports it. */
export interface GpuUsage {
  index: number;
  uuid: string;
  /** Percent of the last sample period in which a kernel ran; undefined where nvidia-smi has none (`[N/A]`). */
  utilizationGpu: number | undefined;
  /** Percent of that period in which memory was read or written. */
  utilizationMemory: number | undefined;
  memoryUsedMib: number | undefined;
  memoryTotalMib: number | undefined;
}

const USAGE_QUERY = ['--query-gpu=index,uuid,utilization.gpu,utilization.memory,memory.used,memory.total', '--format=csv,noheader,nounits'];

/** Every GPU's utilization and memory now: [] without nvidia-smi, or when it fails (with `error`). */
export async function readGpuUsage(
  env: NodeJS.ProcessEnv,
): Promise<{ nvidiaSmi: NvidiaGpuReport['nvidiaSmi']; gpus: GpuUsage[]; error?: string }> {
  const { nvidiaSmi, stdout, error } = await nvidiaSmiQuery(USAGE_QUERY, env);
  return { nvidiaSmi, gpus: nvidiaSmi === 'listed' ? parseGpuUsage(stdout) : [], ...(error === undefined ? {} : { error }) };
}

/**
 * `0, GPU-5f1c…, 35, 12, 4023, 143771`, a line per GPU (no units). A field nvidia-smi cannot give
 * (`[N/A]`, `[Not Supported]`: a MIG device's utilization, say) is undefined; lines that do not
 * parse are left out.
 */
export function parseGpuUsage(csv: string): GpuUsage[] {
  const number = (field: string | undefined) => (field !== undefined && /^\d+(\.\d+)?$/.test(field) ? Number(field) : undefined);
  const gpus: GpuUsage[] = [];
  for (const line of csv.split('\n')) {
    const fields = line.split(',').map((field) => field.trim());
    if (fields.length !== 6 || !/^\d+$/.test(fields[0]!)) continue;
    gpus.push({
      index: Number(fields[0]),
      uuid: fields[1]!,
      utilizationGpu: number(fields[2]),
      utilizationMemory: number(fields[3]),
      memoryUsedMib: number(fields[4]),
      memoryTotalMib: number(fields[5]),
    });
  }
  return gpus;
}

/**
 * The GPUs CUDA may use, from CUDA_VISIBLE_DEVICES, in CUDA's order: indices as nvidia-smi numbers
 * them, or UUIDs (whole, or a prefix such as `GPU-5f1c`). Undefined when it is not set: CUDA sees
 * every GPU. As CUDA reads it, the list ends at the first entry that names no GPU, so `""`, `-1`
 * and `NoDevFiles` hide them all.
 */
export function visibleCudaDevices(env: NodeJS.ProcessEnv): string[] | undefined {
  const raw = env.CUDA_VISIBLE_DEVICES;
  if (raw === undefined) return undefined;
  const visible: string[] = [];
  for (const entry of raw.split(',').map((e) => e.trim())) {
    if (!/^\d+$/.test(entry) && !/^(GPU|MIG)-[0-9a-f-]+$/i.test(entry)) break;
    visible.push(entry);
  }
  return visible;
}

/**
 * The GPU nvidia-smi lists that is CUDA's device `ordinal` (a worker's deviceId): the same index
 * when CUDA_VISIBLE_DEVICES is not set, else the one its `ordinal`-th entry names.
 */
export function gpuForOrdinal(gpus: readonly GpuUsage[], ordinal: number, visible: readonly string[] | undefined): GpuUsage | undefined {
  if (visible === undefined) return gpus.find((g) => g.index === ordinal);
  const entry = visible[ordinal];
  if (entry === undefined) return undefined;
  if (/^\d+$/.test(entry)) return gpus.find((g) => g.index === Number(entry));
  return gpus.find((g) => g.uuid.toLowerCase().startsWith(entry.toLowerCase()));
}

/** Runs nvidia-smi with `args` within its timeout; `error` says why it failed, in one line. */
function nvidiaSmiQuery(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ nvidiaSmi: NvidiaGpuReport['nvidiaSmi']; stdout: string; error?: string }> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', args, { env, timeout: NVIDIA_SMI_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) return resolve({ nvidiaSmi: 'listed', stdout });
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return resolve({ nvidiaSmi: 'not found', stdout: '' });
      const said = `${stdout}\n${stderr}`.split('\n').find((line) => line.trim() !== '');
      const why = error.killed ? `it did not answer within ${NVIDIA_SMI_TIMEOUT_MS / 1000} s` : (said?.trim() ?? error.message);
      resolve({ nvidiaSmi: 'failed', stdout: '', error: why });
    });
  });
}

/**
 * `0, NVIDIA H200, 143771 MiB, 580.159.03`, a line per GPU. The name is everything between the
 * index and the last two fields, in case a name ever holds a comma; lines that do not parse are left out.
 */
export function parseNvidiaSmi(csv: string): NvidiaGpu[] {
  const gpus: NvidiaGpu[] = [];
  for (const line of csv.split('\n')) {
    const fields = line.split(',').map((field) => field.trim());
    if (fields.length < 4 || !/^\d+$/.test(fields[0]!)) continue;
    const driver = fields.at(-1)!;
    const memory = fields.at(-2)!;
    gpus.push({
      index: Number(fields[0]),
      name: fields.slice(1, -2).join(', '),
      memoryMib: Number.parseInt(memory, 10) || 0,
      driver,
    });
  }
  return gpus;
}
