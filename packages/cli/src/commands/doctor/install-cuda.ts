import { spawn } from 'node:child_process';
import { basename, resolve } from 'node:path';
import { serverError } from '@kiln/handler-sdk/errors';
import { extractNupkg } from './extract-nupkg.js';
import {
  CUDA_PLATFORM,
  CUDA_PROVIDER_LIBRARIES,
  currentPlatform,
  findOnnxRuntime,
  GPU_PACKAGE,
  nupkgUrl,
  type OnnxRuntimePackage,
} from './onnxruntime-package.js';

/*
 * `kiln doctor --install cuda`: the CUDA and TensorRT providers are too large for the npm registry,
 * so onnxruntime-node's install script fetches them from NuGet, and Kiln's .npmrc skips that script
 * so that `npm ci` works offline. Running the script again with ONNXRUNTIME_NODE_INSTALL=cuda12, the
 * supported switch, installs them; `--from` does the same from a .nupkg downloaded elsewhere, for
 * machines that cannot reach api.nuget.org.
 */

export interface InstallOptions {
  /** A .nupkg (or its unpacked folder) to take the libraries from instead of downloading it. */
  from?: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** The install script's output and progress, as it comes. */
  progress: (text: string) => void;
}

export interface Installed {
  /** `api.nuget.org`, or the package file the libraries came from. */
  source: string;
  binDir: string;
  files: string[];
  /** False when KILN_ORT_BIN_DIR sent them elsewhere: the providers are then tried from onnxruntime-node's own folder. */
  inOnnxRuntime: boolean;
}

/** The script downloads a few hundred MB; past this it is taken for stuck (it sets no timeouts of its own). */
const INSTALL_TIMEOUT_MS = 15 * 60_000;

export async function installCuda(options: InstallOptions): Promise<Installed> {
  if (currentPlatform() !== CUDA_PLATFORM) {
    throw serverError(
      'KILN_ERR_PROVIDER_UNAVAILABLE',
      `onnxruntime-node publishes its CUDA provider for ${CUDA_PLATFORM} only, and this machine is ${currentPlatform()}`,
    );
  }
  const ort = findOnnxRuntime(options.env);
  const source = options.from === undefined ? 'api.nuget.org' : resolve(options.cwd, options.from);
  if (options.from !== undefined) await extractNupkg(source, ort, options);
  else if (ort.missingCudaLibraries.length > 0) await runInstallScript(ort, options);
  // The script checks for the same files and, finding them all, does nothing.
  else options.progress(`the CUDA provider's libraries are already in ${ort.binDir}; to replace them, install --from a .nupkg\n`);
  const after = findOnnxRuntime(options.env);
  if (after.missingCudaLibraries.length > 0) {
    throw serverError(
      'KILN_ERR_PROVIDER_UNAVAILABLE',
      `the install finished, but ${after.missingCudaLibraries.join(', ')} ${after.missingCudaLibraries.length === 1 ? 'is' : 'are'} still missing from ${ort.binDir}`,
    );
  }
  return { source, binDir: ort.binDir, files: [...CUDA_PROVIDER_LIBRARIES], inOnnxRuntime: resolve(ort.binDir) === resolve(ort.ownBinDir) };
}

/** Runs onnxruntime-node's own script/install.js with ONNXRUNTIME_NODE_INSTALL=cuda12, its output passed on. */
function runInstallScript(ort: OnnxRuntimePackage, options: InstallOptions): Promise<void> {
  options.progress(`$ ONNXRUNTIME_NODE_INSTALL=cuda12 node ${ort.installScript}\n`);
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [ort.installScript], {
      cwd: ort.dir,
      env: scriptEnv(options.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const forward = (text: string) => {
      options.progress(text);
      tail = (tail + text).slice(-8192);
    };
    child.stdout.setEncoding('utf8').on('data', forward);
    child.stderr.setEncoding('utf8').on('data', forward);
    const timer = setTimeout(() => child.kill('SIGKILL'), INSTALL_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      fail(installFailed(ort, `could not start: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return done();
      const what =
        signal === 'SIGKILL' ? `did not finish within ${INSTALL_TIMEOUT_MS / 60_000} minutes` : `failed (exit ${code ?? signal})`;
      fail(installFailed(ort, `${what}: ${errorLine(tail)}`));
    });
  });
}

/**
 * onnxruntime-node 1.30's install.js takes ONNXRUNTIME_NODE_INSTALL before the `skip` that npm
 * passes on from .npmrc (npm_config_onnxruntime_node_install), but reads its value `cuda12` as "not
 * specified" (its parser returns nothing for a named value). It then installs linux/x64's default,
 * cuda12, unless npm's variables say this is `npm run` in the package's own project, as
 * `npm run install:gpu` is: then it quietly does nothing. Without those two variables it installs.
 */
function scriptEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { npm_config_local_prefix: _localPrefix, npm_package_json: _packageJson, ...rest } = env;
  return { ...rest, ONNXRUNTIME_NODE_INSTALL: 'cuda12' };
}

/** What failed, where the package comes from, and the offline route with the exact file to fetch. */
function installFailed(ort: OnnxRuntimePackage, what: string) {
  const url = nupkgUrl(ort.gpuPackageVersion);
  const file = basename(url);
  return serverError(
    'KILN_ERR_PROVIDER_UNAVAILABLE',
    [
      `onnxruntime-node's install script ${what}`,
      `  It downloads ${GPU_PACKAGE} ${ort.gpuPackageVersion} from api.nuget.org, which this machine must reach (through a proxy: set GLOBAL_AGENT_HTTPS_PROXY).`,
      `  Offline: download ${url}`,
      `  on a machine that can reach it, copy it here, and run:`,
      `    kiln doctor --install cuda --from ${file}`,
      `  (in Kiln's repository: npm run install:gpu -- --from ${file})`,
    ].join('\n'),
    { details: { script: ort.installScript, package: GPU_PACKAGE, version: ort.gpuPackageVersion, url } },
  );
}

/** The line that says what went wrong: Node prints `Error: getaddrinfo ENOTFOUND api.nuget.org` for the script's rejection. */
function errorLine(output: string): string {
  const lines = output
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return lines.find((line) => /^\w*Error\b.*?: /.test(line)) ?? lines.filter((line) => !line.startsWith('at ')).at(-1) ?? 'no output';
}
