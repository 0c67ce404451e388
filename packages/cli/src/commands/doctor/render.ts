import { relative } from 'node:path';
import type { ProviderStatus } from '@kiln/handler-sdk/runtime';
import type { Diagnosis } from './diagnose.js';
import type { NvidiaGpuReport } from '@kiln/handler-sdk/runtime';
import type { VulkanLoaderReport } from './vulkan-loader.js';

/** The report for people: facts first, then what each provider needs, then the steps. */
export function renderDiagnosis(diagnosis: Diagnosis): string {
  const { onnxruntime: ort } = diagnosis;
  const lines = [
    `node          ${diagnosis.node} (${diagnosis.platform} ${diagnosis.arch})`,
    `onnxruntime   ${ort.version} (onnxruntime-node in ${ort.path})`,
    `cuda libs     ${cudaLibraries(diagnosis)}`,
    '',
    'execution providers',
    ...renderProviders(diagnosis.providers),
    '',
    'GPUs',
    ...renderNvidia(diagnosis.nvidia),
    ...renderVisible(diagnosis.cudaVisibleDevices),
    `  ${renderVulkan(diagnosis.vulkan)}`,
    '',
    'next steps',
    ...(diagnosis.nextSteps.length === 0
      ? ['  none: every execution provider loads here']
      : diagnosis.nextSteps.map((step) => `  - ${step}`)),
  ];
  return `${lines.join('\n')}\n`;
}

/** `cpu  loadable`, or `cuda  not loadable: why` with the fix under it. */
export function renderProviders(providers: readonly ProviderStatus[]): string[] {
  const width = Math.max(...providers.map((p) => p.name.length));
  return providers.flatMap((p) => {
    const head = `  ${p.name.padEnd(width)}  `;
    if (p.loadable) return [`${head}loadable`];
    const lines = [`${head}not loadable: ${p.reason ?? 'no reason given'}`];
    if (p.fix !== undefined) lines.push(`${' '.repeat(head.length)}fix: ${p.fix}`);
    return lines;
  });
}

function cudaLibraries({ onnxruntime: ort }: Diagnosis): string {
  const where = relative(ort.path, ort.binDir).startsWith('..') ? ort.binDir : relative(ort.path, ort.binDir);
  const { cudaProvider } = ort;
  if (cudaProvider.installed) return `installed in ${where}`;
  return `not installed (${cudaProvider.package} ${cudaProvider.version}; missing from ${where}: ${cudaProvider.missing.join(', ')})`;
}

function renderNvidia(report: NvidiaGpuReport): string[] {
  if (report.nvidiaSmi === 'not found') return ['  nvidia-smi not found: no NVIDIA driver on this machine, or not on PATH'];
  if (report.nvidiaSmi === 'failed') return [`  nvidia-smi failed: ${report.error ?? 'no message'}`];
  if (report.gpus.length === 0) return ['  nvidia-smi lists no GPU'];
  return report.gpus.map((gpu) => `  ${gpu.index}  ${gpu.name}, ${gpu.memoryMib} MiB, driver ${gpu.driver}`);
}

/** Which GPUs CUDA, and so Kiln's CUDA workers, see under CUDA_VISIBLE_DEVICES, as device 0, 1… */
function renderVisible(visible: string[] | null): string[] {
  if (visible === null) return [];
  if (visible.length === 0) return ['  CUDA_VISIBLE_DEVICES hides every GPU from CUDA'];
  const seen = visible.map((gpu, ordinal) => `${/^\d+$/.test(gpu) ? `GPU ${gpu}` : gpu} as device ${ordinal}`).join(', ');
  return [`  CUDA_VISIBLE_DEVICES=${visible.join(',')}: CUDA sees ${seen}`];
}

function renderVulkan(report: VulkanLoaderReport): string {
  if (report.found === null) return `Vulkan loader ${report.library}: unknown, ${report.how}`;
  if (report.found) return `Vulkan loader ${report.library}: ${report.path} (${report.how})`;
  return `Vulkan loader ${report.library}: not found (${report.how}); WebGPU needs it`;
}
