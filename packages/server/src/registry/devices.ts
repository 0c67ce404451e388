import {
  listNvidiaGpus,
  probeProviders,
  providerSummary,
  settleProviders,
  visibleCudaDevices,
  type Device,
  type ExecutionProvider,
  type ModelConfig,
  type ProviderReport,
} from '@kiln/handler-sdk/runtime';
import type { ServerConfig } from '../config/server-config.js';
import type { ServerLog } from '../observability/logs.js';

/*
 * What a model's workers run on. Its execution providers are kept only where they load on this
 * machine (the probe, run once per server in a child process), so that a worker never meets
 * ONNX Runtime's raw failure; a model whose GPU providers all fail runs on the CPU with one warning,
 * or, with `fallback: false`, fails its load. GPU workers take GPUs round-robin: over the model's
 * deviceIds, or over the server's numberOfGpu, each model starting where the one before left off,
 * so that several models spread over the GPUs as TorchServe's global counter spreads them.
 */

/** What the model-config asked for, before this machine had its say: describe shows it beside what runs. */
export interface RequestedDevice {
  deviceType: ModelConfig['deviceType'];
  executionProviders: readonly ExecutionProvider[];
}

export interface DevicePlan {
  /** The config the workers get: providers that load here, and the device type they make. */
  config: ModelConfig;
  requested: RequestedDevice;
  /** The n-th worker's device. */
  device: (index: number) => Device;
}

export interface DevicePlannerOptions {
  /** The providers of `names` that load on this machine (probeProviders, memoized by the caller). */
  probe: (names: readonly string[]) => Promise<ProviderReport>;
  /** The GPUs workers share when a model lists no deviceIds: numberOfGpu, or those nvidia-smi sees. */
  gpuCount: () => Promise<number>;
  warn: (message: string) => void;
}

export class DevicePlanner {
  /** Where the next model's workers start on the server's GPUs. */
  private nextGpu = 0;

  constructor(private readonly options: DevicePlannerOptions) {}

  async plan(model: string, config: ModelConfig): Promise<DevicePlan> {
    const requested = { deviceType: config.deviceType, executionProviders: config.executionProviders };
    const settled = await settleProviders(model, config, this.options.warn, this.options.probe);
    if (settled.deviceType !== 'gpu') return { config: settled, requested, device: () => ({ type: 'cpu', id: undefined }) };
    const ids = settled.deviceIds.length > 0 ? settled.deviceIds : range(await this.options.gpuCount());
    // No GPU counted (no nvidia-smi, numberOfGpu 0) and none listed: GPU 0, the provider's own default.
    const gpus = ids.length > 0 ? ids : [0];
    const offset = settled.deviceIds.length > 0 ? 0 : this.nextGpu;
    if (settled.deviceIds.length === 0) this.nextGpu += Math.max(1, settled.minWorkers);
    return { config: settled, requested, device: roundRobin(gpus, offset) };
  }
}

/** The n-th worker takes `gpus[(offset + n) % gpus.length]`. */
export function roundRobin(gpus: readonly number[], offset = 0): (index: number) => Device {
  return (index) => ({ type: 'gpu', id: gpus[(offset + index) % gpus.length]! });
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * The server's planner: one probe of every provider, run the first time a model asks for one other
 * than cpu or when `probeAll` is called (serve.ts, once the models are up, with --probe-providers),
 * and logged once; the GPU count from numberOfGpu, or nvidia-smi, asked once.
 */
export function serverDevices(
  config: Pick<ServerConfig, 'numberOfGpu'>,
  log: ServerLog,
  env: NodeJS.ProcessEnv = process.env,
): { planner: DevicePlanner; probeAll: () => Promise<ProviderReport> } {
  let report: Promise<ProviderReport> | undefined;
  const probeAll = () =>
    (report ??= probeProviders().then((found) => {
      log.info(`execution providers: ${providerSummary(found)}`);
      return found;
    }));
  let gpus: Promise<number> | undefined;
  // As TorchServe counts them: numberOfGpu, else the GPUs CUDA_VISIBLE_DEVICES leaves CUDA, else all nvidia-smi lists.
  const visible = visibleCudaDevices(env);
  const gpuCount = () =>
    (gpus ??=
      config.numberOfGpu !== undefined
        ? Promise.resolve(config.numberOfGpu)
        : visible !== undefined
          ? Promise.resolve(visible.length)
          : listNvidiaGpus(env).then((found) => found.gpus.length));
  return { planner: new DevicePlanner({ probe: probeAll, gpuCount, warn: (message) => log.warn(message) }), probeAll };
}
