import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { delimiter, join } from 'node:path';

/*
 * WebGPU in onnxruntime-node runs on Dawn, which on Linux opens the Vulkan loader by name. Whether
 * the loader is installed is the first thing to know when webgpu does not load: without it no
 * driver matters.
 */

export const VULKAN_LOADER = 'libvulkan.so.1';

export interface VulkanLoaderReport {
  library: typeof VULKAN_LOADER;
  /** null: it could not be told (not Linux, or no ldconfig). */
  found: boolean | null;
  path?: string;
  /** How it was looked for, or why it could not be. */
  how: string;
}

/** ldconfig is in /sbin, which is not on every user's PATH. */
const LDCONFIG_CANDIDATES = ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig'];

/** The tag ldconfig -p gives libraries of this process's architecture: `(libc6,x86-64)`. */
const LDCONFIG_ARCH_TAG: Record<string, string> = { x64: 'x86-64', arm64: 'AArch64' };

export async function findVulkanLoader(env: NodeJS.ProcessEnv): Promise<VulkanLoaderReport> {
  if (platform() !== 'linux') return { library: VULKAN_LOADER, found: null, how: `only looked for on Linux (this is ${platform()})` };
  // The dynamic loader looks in LD_LIBRARY_PATH before its cache, and ldconfig knows nothing of it.
  for (const dir of (env.LD_LIBRARY_PATH ?? '').split(delimiter).filter(Boolean)) {
    const path = join(dir, VULKAN_LOADER);
    if (existsSync(path)) return { library: VULKAN_LOADER, found: true, path, how: 'LD_LIBRARY_PATH' };
  }
  for (const ldconfig of LDCONFIG_CANDIDATES) {
    const listing = await run(ldconfig, env);
    if (listing === undefined) continue;
    const path = findInLdconfig(listing, LDCONFIG_ARCH_TAG[arch()]);
    return path === undefined
      ? { library: VULKAN_LOADER, found: false, how: 'ldconfig -p' }
      : { library: VULKAN_LOADER, found: true, path, how: 'ldconfig -p' };
  }
  return { library: VULKAN_LOADER, found: null, how: 'ldconfig not found, so the loader cache could not be read' };
}

/** `\tlibvulkan.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libvulkan.so.1` → that path. */
export function findInLdconfig(listing: string, archTag: string | undefined): string | undefined {
  for (const line of listing.split('\n')) {
    const match = /^\s*(\S+) \(([^)]*)\) => (.+)$/.exec(line);
    if (match?.[1] !== VULKAN_LOADER) continue;
    // A 32-bit loader does not serve a 64-bit process.
    if (archTag === undefined || match[2]!.split(',').includes(archTag)) return match[3]!.trim();
  }
  return undefined;
}

/** `ldconfig -p`'s output, or undefined when that ldconfig is not there or fails. */
function run(ldconfig: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(ldconfig, ['-p'], { env, timeout: 10_000, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (error, stdout) =>
      resolve(error === null ? stdout : undefined),
    );
  });
}
