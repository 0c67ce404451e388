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
export function listNvidiaGpus(env: NodeJS.ProcessEnv): Promise<NvidiaGpuReport> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', QUERY, { env, timeout: NVIDIA_SMI_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) return resolve({ nvidiaSmi: 'listed', gpus: parseNvidiaSmi(stdout) });
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return resolve({ nvidiaSmi: 'not found', gpus: [] });
      const said = `${stdout}\n${stderr}`.split('\n').find((line) => line.trim() !== '');
      const why = error.killed ? `it did not answer within ${NVIDIA_SMI_TIMEOUT_MS / 1000} s` : (said?.trim() ?? error.message);
      resolve({ nvidiaSmi: 'failed', gpus: [], error: why });
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
