import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './kiln.js';

/*
 * Mesa's software Vulkan driver (lavapipe) and the Vulkan loader, unpacked into .tmp/soft-vulkan by
 * scripts/soft-vulkan.sh (.ci/run runs it): with these two variables, onnxruntime-node's WebGPU
 * provider loads on a machine without a GPU, and Kiln's GPU path runs for real on it.
 */
const DIR = process.env.KILN_SOFT_VULKAN_DIR ?? join(REPO_ROOT, '.tmp/soft-vulkan');

/** The environment that makes WebGPU load, or undefined when scripts/soft-vulkan.sh has not run. */
export const softVulkanEnv: NodeJS.ProcessEnv | undefined =
  existsSync(join(DIR, 'lvp_icd.json')) && existsSync(join(DIR, 'lib/libvulkan_lvp.so'))
    ? {
        LD_LIBRARY_PATH: [join(DIR, 'lib'), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
        VK_ICD_FILENAMES: join(DIR, 'lvp_icd.json'),
      }
    : undefined;

/** Without it only a local run may skip a WebGPU test; in CI it fails, saying what to run. */
export const noSoftVulkan = softVulkanEnv === undefined && process.env.CI === undefined;

export function requireSoftVulkan(): NodeJS.ProcessEnv {
  if (softVulkanEnv === undefined) throw new Error(`no software Vulkan driver in ${DIR}: run bash scripts/soft-vulkan.sh (.ci/run does)`);
  return softVulkanEnv;
}
