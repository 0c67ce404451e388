import { arch, platform } from 'node:os';
import { listNvidiaGpus, probeProviders, visibleCudaDevices, type NvidiaGpuReport, type ProviderStatus } from '@kiln/handler-sdk/runtime';
import { findOnnxRuntime, GPU_PACKAGE, type OnnxRuntimePackage } from './onnxruntime-package.js';
import { findVulkanLoader, type VulkanLoaderReport } from './vulkan-loader.js';

/** Everything `kiln doctor` reports; `--json` prints it as it is. */
export interface Diagnosis {
  node: string;
  platform: string;
  arch: string;
  onnxruntime: {
    version: string;
    path: string;
    binDir: string;
    cudaProvider: { installed: boolean; missing: string[]; package: string; version: string };
  };
  providers: ProviderStatus[];
  nvidia: NvidiaGpuReport;
  /** CUDA_VISIBLE_DEVICES as CUDA reads it; null when it is not set (CUDA sees every GPU). */
  cudaVisibleDevices: string[] | null;
  vulkan: VulkanLoaderReport;
  /** What to do, one line each; empty when every provider loads. */
  nextSteps: string[];
}

/** Gathers the facts at once: each probe runs in a process of its own and none of them throws. */
export async function diagnose(env: NodeJS.ProcessEnv): Promise<Diagnosis> {
  const ort = findOnnxRuntime(env);
  const [report, nvidia, vulkan] = await Promise.all([probeProviders(), listNvidiaGpus(env), findVulkanLoader(env)]);
  return {
    node: process.version,
    platform: platform(),
    arch: arch(),
    onnxruntime: {
      version: ort.version,
      path: ort.dir,
      binDir: ort.binDir,
      cudaProvider: {
        installed: ort.missingCudaLibraries.length === 0,
        missing: ort.missingCudaLibraries,
        package: GPU_PACKAGE,
        version: ort.gpuPackageVersion,
      },
    },
    providers: report.providers,
    nvidia,
    cudaVisibleDevices: visibleCudaDevices(env) ?? null,
    vulkan,
    nextSteps: nextSteps(report.providers, ort, nvidia, vulkan),
  };
}

/**
 * One step per thing missing, machine facts first: the probe knows why a provider failed, but
 * not that the same machine also has no GPU driver, which the user needs to hear at the same time.
 */
export function nextSteps(
  providers: readonly ProviderStatus[],
  ort: OnnxRuntimePackage,
  nvidia: NvidiaGpuReport,
  vulkan: VulkanLoaderReport,
): string[] {
  const steps: string[] = [];
  const add = (step: string) => {
    if (!steps.includes(step)) steps.push(step);
  };
  const failed = (name: string) => providers.find((p) => p.name === name && !p.loadable);
  const cuda = failed('cuda');
  const tensorrt = failed('tensorrt');
  if (cuda !== undefined || tensorrt !== undefined) {
    if (ort.missingCudaLibraries.length > 0) {
      add(
        `CUDA: run \`npm run install:gpu\` (or \`kiln doctor --install cuda\`) to fetch ${GPU_PACKAGE} ${ort.gpuPackageVersion} from api.nuget.org; offline, download it elsewhere and pass it with \`--from <.nupkg>\``,
      );
    }
    if (nvidia.gpus.length === 0) {
      add(
        'CUDA: no NVIDIA GPU is visible: install the NVIDIA driver (`nvidia-smi` should list the GPU); in a container, run it with the GPUs (docker run --gpus all, or the nvidia.com/gpu resource)',
      );
    } else if (ort.missingCudaLibraries.length === 0) {
      if (cuda?.fix !== undefined) add(`CUDA: ${cuda.fix}`);
      if (tensorrt?.fix !== undefined) add(`TensorRT: ${tensorrt.fix}`);
    }
  }
  const webgpu = failed('webgpu');
  if (webgpu !== undefined) {
    add(
      vulkan.found === false
        ? 'WebGPU: install libvulkan1 (the Vulkan loader) and a driver with Vulkan support'
        : `WebGPU: ${webgpu.fix ?? webgpu.reason ?? 'run `kiln doctor` on the machine that serves'}`,
    );
  }
  return steps;
}
