import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { STDERR_MARK } from './identity-model.js';

/*
 * Which ONNX Runtime execution providers this machine can really run, found out in a child process:
 * a provider that cannot load (CUDA's libraries missing, no Vulkan for WebGPU) makes ONNX Runtime
 * and Dawn print their own errors straight to the process's stderr, which a worker thread cannot
 * hold back. The child takes those lines; the server and `kiln doctor` get one clear reason and fix
 * per provider, and workers are only ever asked for providers that load.
 */

/** One provider onnxruntime-node knows, and whether it loads here. */
export interface ProviderStatus {
  name: string;
  /** Its libraries ship inside onnxruntime-node (cpu, webgpu); cuda and tensorrt are installed apart. */
  bundled: boolean;
  loadable: boolean;
  /** Why it does not load, in one line: the missing library when there is one. */
  reason?: string;
  /** What to do about it. */
  fix?: string;
}

export interface ProviderReport {
  /** onnxruntime-node's version. */
  onnxruntime: string;
  providers: ProviderStatus[];
}

const CHILD = fileURLToPath(new URL('./probe-child.js', import.meta.url));
const INSTALL_CUDA =
  "run `npm run install:gpu` (or `kiln doctor --install cuda`) on a machine that can reach api.nuget.org, where onnxruntime-node's CUDA provider is published";
const REINSTALL_CUDA =
  "install it again with `kiln doctor --install cuda`, or `--from` the Microsoft.ML.OnnxRuntime.Gpu.Linux .nupkg of onnxruntime-node's own version";

/**
 * Probes `names` (default: every provider onnxruntime-node lists) in a child process, within
 * `timeoutMs`. Never throws: a child that fails reports every provider but cpu as not loadable,
 * with the reason.
 */
export async function probeProviders(names?: readonly string[], timeoutMs = 30_000): Promise<ProviderReport> {
  const { lines, stderr, failure } = await runChild(names, timeoutMs);
  const backends = lines.find((l) => l.kind === 'backends');
  const listed = (backends?.backends ?? [{ name: 'cpu', bundled: true }]).filter((b) => names === undefined || names.includes(b.name));
  const providers = listed.map(({ name, bundled }): ProviderStatus => {
    const result = lines.find((l) => l.kind === 'provider' && l.name === name);
    if (result?.loadable === true) return { name, bundled, loadable: true };
    const why = result?.error ?? failure ?? 'the probe stopped before it was tried';
    return { name, bundled, loadable: false, ...explain(name, why, stderrOf(stderr, name)) };
  });
  // Asked for but unknown to this build: named, so that a typo or an older build says so.
  for (const name of names ?? []) {
    if (!providers.some((p) => p.name === name))
      providers.push({
        name,
        bundled: false,
        loadable: false,
        reason: `this onnxruntime-node build (${backends?.version ?? 'unknown version'}) has no "${name}" execution provider`,
        fix: `use one of: ${listed.map((b) => b.name).join(', ')}`,
      });
  }
  return { onnxruntime: backends?.version ?? 'unknown', providers };
}

interface ChildLine {
  kind: 'backends' | 'provider' | 'done';
  version?: string;
  backends?: { name: string; bundled: boolean }[];
  name?: string;
  loadable?: boolean;
  error?: string;
}

function runChild(
  names: readonly string[] | undefined,
  timeoutMs: number,
): Promise<{ lines: ChildLine[]; stderr: string; failure?: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD, (names ?? ['cpu', 'webgpu', 'cuda', 'tensorrt']).join(',')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ORT_DISABLE_TELEMETRY: process.env.ORT_DISABLE_TELEMETRY ?? '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d).slice(-16_384)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    timer.unref();
    const finish = (failure?: string) => {
      clearTimeout(timer);
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as ChildLine);
      const done = lines.some((l) => l.kind === 'done');
      resolve({ lines, stderr, ...(done ? {} : { failure: failure ?? `the probe process ended early: ${lastLine(stderr)}` }) });
    };
    child.once('error', (error) => finish(`the probe process could not start: ${error.message}`));
    child.once('close', (code, signal) =>
      finish(
        signal === 'SIGKILL' ? `the probe took longer than ${timeoutMs} ms` : code === 0 ? undefined : `the probe process exited ${code}`,
      ),
    );
  });
}

/** The part of the child's stderr printed while `name` was tried. */
function stderrOf(stderr: string, name: string): string {
  const start = stderr.indexOf(`${STDERR_MARK}${name}\n`);
  if (start === -1) return '';
  const end = stderr.indexOf(STDERR_MARK, start + 1);
  return stderr.slice(start, end === -1 ? undefined : end);
}

const lastLine = (text: string) =>
  text
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith(STDERR_MARK))
    .at(-1) ?? '';

/** A provider's failure, as one reason and one fix, from its error and what the native code printed. */
export function explain(name: string, error: string, stderr: string): { reason: string; fix: string } {
  const text = `${error}\n${stderr}`;
  const missing = /([\w.+-]+\.so(?:\.\d+)*): cannot open shared object file/.exec(text)?.[1];
  if (name === 'cuda' || name === 'tensorrt') {
    // The provider library is there but dlopen refuses it: damaged, or built for another onnxruntime.
    const refused = /Failed to load library (\S+) with error: \S+?: (?!cannot open shared object file)([^\n]+)/.exec(stderr);
    if (missing === undefined && refused !== null) {
      return {
        reason: `onnxruntime-node's CUDA provider is installed, but ${refused[1]!.split('/').at(-1)} does not load (${refused[2]!.trim()})`,
        fix: REINSTALL_CUDA,
      };
    }
    if (missing === undefined && /Failed to load shared library/.test(error)) {
      return { reason: `onnxruntime-node was installed without its ${name === 'cuda' ? 'CUDA' : 'TensorRT'} provider`, fix: INSTALL_CUDA };
    }
    if (missing !== undefined && /^libonnxruntime_providers_/.test(missing)) {
      return { reason: `onnxruntime-node was installed without its CUDA provider (${missing} is missing)`, fix: INSTALL_CUDA };
    }
    if (missing !== undefined && /^libnvinfer/.test(missing)) {
      return {
        reason: `TensorRT's ${missing} is missing`,
        fix: 'install TensorRT 10 and make its libraries visible to the loader (ldconfig or LD_LIBRARY_PATH)',
      };
    }
    if (missing !== undefined) {
      return {
        reason: `${missing}, which the CUDA provider needs, is missing`,
        fix: "install CUDA 12 and cuDNN 9 (what onnxruntime-node's CUDA provider is built for) and make them visible to the loader (ldconfig or LD_LIBRARY_PATH)",
      };
    }
    if (/no CUDA-capable device|CUDA failure 100|cudaErrorNoDevice|driver/i.test(text)) {
      return {
        reason: `no GPU is visible to CUDA (${oneLine(error)})`,
        fix: 'check `nvidia-smi`; in a container, run it with the GPUs (docker run --gpus all, or the nvidia.com/gpu resource)',
      };
    }
    return { reason: oneLine(error), fix: 'run `kiln doctor` for what this machine has' };
  }
  if (name === 'webgpu') {
    if (missing !== undefined) {
      return {
        reason: `no Vulkan loader (${missing} is missing)`,
        fix: "install the Vulkan loader (Debian: apt install libvulkan1) and a driver with Vulkan support (NVIDIA's driver ships its own)",
      };
    }
    // A driver Vulkan found, but Dawn turned down: it says why just before `While initializing adapter`.
    const turnedDown = /(?:Warning|Error): ([^\n]+)\n\s*- While initializing adapter/.exec(stderr)?.[1];
    if (turnedDown !== undefined) {
      return {
        reason: `no WebGPU adapter: Vulkan found a driver that WebGPU cannot use (${turnedDown.trim()})`,
        fix: "update the GPU driver: NVIDIA's current one, or Mesa 24 or later (Debian 12's Mesa 22 is too old: bookworm-backports has 25; scripts/soft-vulkan.sh for lavapipe on the CPU)",
      };
    }
    if (/adapter/i.test(text)) {
      return {
        reason: 'no WebGPU adapter: Vulkan finds no GPU driver',
        fix: "install a driver with Vulkan support (NVIDIA's driver, or Mesa's: apt install mesa-vulkan-drivers); in a container, expose the GPU and the driver's Vulkan ICD file",
      };
    }
  }
  return { reason: oneLine(error), fix: 'run `kiln doctor` for what this machine has' };
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim().slice(0, 300);

/** `cpu; not available: webgpu (no Vulkan loader (libvulkan.so.1 is missing)), cuda (...)`. */
export function providerSummary(report: ProviderReport): string {
  const loadable = report.providers.filter((p) => p.loadable).map((p) => p.name);
  const missing = report.providers.filter((p) => !p.loadable).map((p) => `${p.name} (${p.reason})`);
  return `${loadable.join(', ') || 'none'}${missing.length > 0 ? `; not available: ${missing.join(', ')}` : ''}`;
}
