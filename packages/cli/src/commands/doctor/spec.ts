import type { CommandSpec } from '../../command-spec.js';

export const doctorCommand: CommandSpec = {
  name: 'doctor',
  summary: 'Report which execution providers (cpu, webgpu, cuda, tensorrt) load on this machine, and what is missing',
  description:
    'Prints the versions of Node and onnxruntime-node, tries each execution provider in a child process, lists the NVIDIA GPUs nvidia-smi sees (and which of them CUDA_VISIBLE_DEVICES leaves CUDA) and whether the Vulkan loader (libvulkan.so.1, which WebGPU needs) is installed, and ends with the next steps. ' +
    'Exits 0 whatever it finds, unless --require names a provider that does not load (exit 1, KILN_ERR_PROVIDER_UNAVAILABLE). ' +
    "--install cuda runs onnxruntime-node's own install script with ONNXRUNTIME_NODE_INSTALL=cuda12, which downloads Microsoft.ML.OnnxRuntime.Gpu.Linux from api.nuget.org; on a machine that cannot reach it, download that .nupkg elsewhere and pass it with --from. " +
    "For Kiln's own tests, KILN_ORT_BIN_DIR replaces onnxruntime-node's bin folder as the place the CUDA provider's libraries are looked for and written to, and KILN_ORT_INSTALL_SCRIPT replaces its install script.",
  options: [
    { flags: '--json', description: 'Print the report as JSON' },
    { flags: '--require <provider>', description: 'Exit 1 unless this execution provider loads here (for scripts and CI)' },
    {
      flags: '--install <provider>',
      description: "Install onnxruntime-node's CUDA provider (its TensorRT provider comes with it), then try it",
      choices: ['cuda'],
    },
    {
      flags: '--from <nupkg>',
      description:
        'With --install cuda: take the libraries from this Microsoft.ML.OnnxRuntime.Gpu.Linux .nupkg (or its unpacked folder) instead of downloading it',
    },
  ],
  load: () => import('./cli.js'),
};
