import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';

/*
 * Where onnxruntime-node is and what its CUDA provider needs, read from the package itself. Its
 * install script (script/install.js, install-metadata.js) downloads three libraries from NuGet
 * into its bin folder; `kiln doctor` checks for the same files and installs them the same way.
 */

/** The NuGet package onnxruntime-node takes its Linux CUDA and TensorRT providers from. */
export const GPU_PACKAGE = 'Microsoft.ML.OnnxRuntime.Gpu.Linux';

/** The libraries its install script adds; they sit beside the binding, which loads them from there. */
export const CUDA_PROVIDER_LIBRARIES = [
  'libonnxruntime_providers_cuda.so',
  'libonnxruntime_providers_shared.so',
  'libonnxruntime_providers_tensorrt.so',
] as const;

/** Where they are inside the .nupkg. */
export const NUPKG_LIBRARY_FOLDER = 'runtimes/linux-x64/native';

/** The only platform onnxruntime-node installs a CUDA provider for (install-metadata.js `requirements`). */
export const CUDA_PLATFORM = 'linux/x64';

export interface OnnxRuntimePackage {
  version: string;
  /** The package's folder. */
  dir: string;
  /** The folder its native binding loads provider libraries from. */
  ownBinDir: string;
  /** Where `kiln doctor` looks for them and `--from` writes them: ownBinDir, or KILN_ORT_BIN_DIR in tests. */
  binDir: string;
  /** Its install script, which `--install cuda` runs (KILN_ORT_INSTALL_SCRIPT in tests). */
  installScript: string;
  /** The version of GPU_PACKAGE its install script asks for: the provider libraries must match the runtime. */
  gpuPackageVersion: string;
  /** CUDA_PROVIDER_LIBRARIES that are not in binDir. */
  missingCudaLibraries: string[];
}

/** onnxruntime-node as @kiln/handler-sdk loads it: the copy the workers and the probe use. */
export function findOnnxRuntime(env: NodeJS.ProcessEnv): OnnxRuntimePackage {
  const require = createRequire(import.meta.url);
  const sdkManifest = require.resolve('@kiln/handler-sdk/package.json');
  const manifest = createRequire(sdkManifest).resolve('onnxruntime-node/package.json');
  const dir = dirname(manifest);
  const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
  const ownBinDir = join(dir, 'bin/napi-v6', platform(), arch());
  const binDir = env.KILN_ORT_BIN_DIR || ownBinDir;
  return {
    version,
    dir,
    ownBinDir,
    binDir,
    installScript: env.KILN_ORT_INSTALL_SCRIPT || join(dir, 'script/install.js'),
    gpuPackageVersion: nugetVersion(require, dir) ?? version,
    missingCudaLibraries: CUDA_PROVIDER_LIBRARIES.filter((name) => !existsSync(join(binDir, name))),
  };
}

/** What script/install-metadata-versions.js names: `{ nuget: [{ feed, version }] }`. */
function nugetVersion(require: NodeRequire, dir: string): string | undefined {
  try {
    const versions = require(join(dir, 'script/install-metadata-versions.js')) as { nuget?: { version?: unknown }[] };
    const version = versions.nuget?.[0]?.version;
    return typeof version === 'string' ? version : undefined;
  } catch {
    // A later onnxruntime-node may move the file; its own version is then the best guess.
    return undefined;
  }
}

/** `linux/x64`, as onnxruntime-node's install metadata names platforms. */
export function currentPlatform(): string {
  return `${platform()}/${arch()}`;
}

/** The .nupkg's address on nuget.org, to download on another machine. */
export function nupkgUrl(version: string): string {
  const id = GPU_PACKAGE.toLowerCase();
  return `https://api.nuget.org/v3-flatcontainer/${id}/${version}/${id}.${version}.nupkg`;
}
