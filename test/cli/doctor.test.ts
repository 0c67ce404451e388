import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { KILN_BIN, REPO_ROOT, tempDir, type KilnRun } from '../support/kiln.js';
import { fakeNvidiaSmi, writeCommand } from '../support/fake-commands.js';
import { rawZip, type RawEntry } from '../support/raw-zip.js';

// onnxruntime-node as @kiln/handler-sdk resolves it: the copy `kiln doctor` reports on. Its bin
// folder is only ever read here; installs go to KILN_ORT_BIN_DIR, and the install script is a fake.
const sdkRequire = createRequire(join(REPO_ROOT, 'packages/handler-sdk/package.json'));
const ORT_DIR = dirname(sdkRequire.resolve('onnxruntime-node/package.json'));
const ORT_VERSION = (JSON.parse(readFileSync(join(ORT_DIR, 'package.json'), 'utf8')) as { version: string }).version;
const GPU_VERSION = (sdkRequire(join(ORT_DIR, 'script/install-metadata-versions.js')) as { nuget: { version: string }[] }).nuget[0]!
  .version;
const ORT_BIN = join(ORT_DIR, 'bin/napi-v6', process.platform, process.arch);
const LIBRARIES = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so', 'libonnxruntime_providers_tensorrt.so'];
// A machine where someone ran `npm run install:gpu` may load cuda; the claims about its absence are skipped there.
const CUDA_INSTALLED = LIBRARIES.every((name) => existsSync(join(ORT_BIN, name)));

interface Provider {
  name: string;
  loadable: boolean;
  reason?: string;
  fix?: string;
}

/** `kiln doctor`, killed if it ever hangs; PATH holds only `bin` (a folder of fakes) unless given. */
function doctor(args: string[], env: NodeJS.ProcessEnv = {}): KilnRun {
  const run = spawnSync(process.execPath, [KILN_BIN, 'doctor', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, PATH: tempDir('kiln-empty-path-'), ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** A folder with an executable `name` that runs `script` (sh). */
const fakeCommand = (name: string, script: string) => writeCommand(tempDir('kiln-fake-bin-'), name, script);

const provider = (providers: Provider[], name: string) => providers.find((p) => p.name === name)!;

describe('kiln doctor on this machine', () => {
  test('--json: versions, cpu loadable, no nvidia-smi, and the next steps', () => {
    const run = doctor(['--json']);
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({
      node: process.version,
      platform: process.platform,
      arch: process.arch,
      onnxruntime: { version: ORT_VERSION, path: ORT_DIR, binDir: ORT_BIN },
      nvidia: { nvidiaSmi: 'not found', gpus: [] },
    });
    expect(report.onnxruntime.cudaProvider).toMatchObject({ package: 'Microsoft.ML.OnnxRuntime.Gpu.Linux', version: GPU_VERSION });
    expect(report.providers.map((p: Provider) => p.name)).toEqual(expect.arrayContaining(['cpu', 'cuda', 'tensorrt']));
    expect(provider(report.providers, 'cpu')).toEqual({ name: 'cpu', bundled: true, loadable: true });
    expect(report.nextSteps).toContain(
      'CUDA: no NVIDIA GPU is visible: install the NVIDIA driver (`nvidia-smi` should list the GPU); in a container, run it with the GPUs (docker run --gpus all, or the nvidia.com/gpu resource)',
    );
    expect(report.vulkan.library).toBe('libvulkan.so.1');
  });

  test.skipIf(CUDA_INSTALLED)('--json: cuda does not load, because onnxruntime-node was installed without its CUDA provider', () => {
    const report = JSON.parse(doctor(['--json']).stdout);
    const cuda = provider(report.providers, 'cuda');
    expect(cuda).toMatchObject({ loadable: false, bundled: false });
    expect(cuda.reason).toMatch(/^onnxruntime-node was installed without its CUDA provider/);
    expect(cuda.fix).toContain('npm run install:gpu');
    expect(report.onnxruntime.cudaProvider).toMatchObject({ installed: false, missing: LIBRARIES });
    expect(report.nextSteps[0]).toBe(
      `CUDA: run \`npm run install:gpu\` (or \`kiln doctor --install cuda\`) to fetch Microsoft.ML.OnnxRuntime.Gpu.Linux ${GPU_VERSION} from api.nuget.org; offline, download it elsewhere and pass it with \`--from <.nupkg>\``,
    );
  });

  test.skipIf(CUDA_INSTALLED)('the text report prints the same facts', () => {
    const run = doctor([]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`node          ${process.version} (${process.platform} ${process.arch})`);
    expect(run.stdout).toContain(`onnxruntime   ${ORT_VERSION} (onnxruntime-node in ${ORT_DIR})`);
    expect(run.stdout).toMatch(/^ {2}cpu +loadable$/m);
    expect(run.stdout).toMatch(/^ {2}cuda +not loadable: onnxruntime-node was installed without its CUDA provider/m);
    expect(run.stdout).toMatch(/^ +fix: run `npm run install:gpu`/m);
    expect(run.stdout).toContain('nvidia-smi not found: no NVIDIA driver on this machine, or not on PATH');
    expect(run.stdout).toMatch(/Vulkan loader libvulkan\.so\.1: /);
    expect(run.stdout).toMatch(/next steps\n {2}- CUDA: run `npm run install:gpu`/);
  });

  test('--require cpu exits 0; --require cuda exits 1 naming the reason', () => {
    expect(doctor(['--require', 'cpu']).status).toBe(0);
    const unknown = doctor(['--require', 'cdua']);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain(
      'error KILN_ERR_PROVIDER_UNAVAILABLE: --require cdua: cdua does not load here: this onnxruntime-node build has no "cdua"',
    );
    if (CUDA_INSTALLED) return;
    const cuda = doctor(['--require', 'cuda']);
    expect(cuda.status).toBe(1);
    expect(cuda.stdout).toContain('execution providers'); // the report comes first
    expect(cuda.stderr).toMatch(
      /^error KILN_ERR_PROVIDER_UNAVAILABLE: --require cuda: cuda does not load here: onnxruntime-node was installed without its CUDA provider.*npm run install:gpu/m,
    );
  });
});

describe('kiln doctor lists the GPUs nvidia-smi sees', () => {
  test('two GPUs, parsed from the CSV nvidia-smi prints for the query doctor makes', () => {
    const bin = fakeCommand(
      'nvidia-smi',
      [
        'test "$*" = "--query-gpu=index,name,memory.total,driver_version --format=csv,noheader" || { echo "unexpected arguments: $*" >&2; exit 9; }',
        "echo '0, NVIDIA H200, 143771 MiB, 580.159.03'",
        "echo '1, NVIDIA A100-SXM4-80GB, 81920 MiB, 580.159.03'",
      ].join('\n'),
    );
    const json = JSON.parse(doctor(['--json'], { PATH: bin }).stdout);
    expect(json.nvidia).toEqual({
      nvidiaSmi: 'listed',
      gpus: [
        { index: 0, name: 'NVIDIA H200', memoryMib: 143771, driver: '580.159.03' },
        { index: 1, name: 'NVIDIA A100-SXM4-80GB', memoryMib: 81920, driver: '580.159.03' },
      ],
    });
    expect(json.nextSteps.join('\n')).not.toContain('no NVIDIA GPU is visible');
    const text = doctor([], { PATH: bin }).stdout;
    expect(text).toContain(
      'GPUs\n  0  NVIDIA H200, 143771 MiB, driver 580.159.03\n  1  NVIDIA A100-SXM4-80GB, 81920 MiB, driver 580.159.03\n',
    );
  });

  test('CUDA_VISIBLE_DEVICES: which GPUs CUDA sees, as which device', () => {
    const bin = fakeNvidiaSmi(tempDir('kiln-fake-bin-'));
    const run = doctor([], { PATH: bin, CUDA_VISIBLE_DEVICES: '1,GPU-0f3e' });
    expect(run.stdout).toContain('  CUDA_VISIBLE_DEVICES=1,GPU-0f3e: CUDA sees GPU 1 as device 0, GPU-0f3e as device 1\n');
    expect(JSON.parse(doctor(['--json'], { PATH: bin, CUDA_VISIBLE_DEVICES: '-1' }).stdout).cudaVisibleDevices).toEqual([]);
    expect(doctor([], { PATH: bin, CUDA_VISIBLE_DEVICES: '' }).stdout).toContain('  CUDA_VISIBLE_DEVICES hides every GPU from CUDA\n');
    expect(JSON.parse(doctor(['--json'], { PATH: bin, CUDA_VISIBLE_DEVICES: undefined }).stdout).cudaVisibleDevices).toBeNull();
  });

  test('an nvidia-smi that cannot reach the driver is reported with its own words', () => {
    const bin = fakeCommand(
      'nvidia-smi',
      'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."; exit 9',
    );
    const run = doctor([], { PATH: bin });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("nvidia-smi failed: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.");
    expect(run.stdout).toContain('CUDA: no NVIDIA GPU is visible');
  });
});

/** A .nupkg as nuget.org serves it, in miniature: the .nuspec, the three libraries and some of the rest. */
function fakeNupkg(dir: string, options: { version?: string; without?: string } = {}): string {
  const nuspec = `<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata>
    <id>Microsoft.ML.OnnxRuntime.Gpu.Linux</id>
    <version>${options.version ?? GPU_VERSION}</version>
  </metadata>
</package>
`;
  const entries: RawEntry[] = [
    { name: '_rels/.rels', data: Buffer.from('<Relationships/>') },
    { name: 'Microsoft.ML.OnnxRuntime.Gpu.Linux.nuspec', data: Buffer.from(nuspec), deflate: true },
    { name: 'runtimes/linux-x64/native/libonnxruntime.so', data: Buffer.from('not this one') },
    ...LIBRARIES.filter((name) => name !== options.without).map((name) => ({
      name: `runtimes/linux-x64/native/${name}`,
      data: Buffer.from(`fake ${name}`),
      deflate: true,
    })),
    { name: '[Content_Types].xml', data: Buffer.from('<Types/>') },
  ];
  const path = join(dir, `microsoft.ml.onnxruntime.gpu.linux.${options.version ?? GPU_VERSION}.nupkg`);
  writeFileSync(path, rawZip(entries));
  return path;
}

const listing = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);

describe('kiln doctor --install cuda', () => {
  test('--from a .nupkg writes the three libraries, then tries the providers again', () => {
    const binDir = tempDir('kiln-ort-bin-');
    const nupkg = fakeNupkg(tempDir());
    const before = listing(ORT_BIN);
    const run = doctor(['--install', 'cuda', '--from', nupkg], { KILN_ORT_BIN_DIR: binDir });
    expect(run.stderr).toBe(
      LIBRARIES.map((name) => `extracting runtimes/linux-x64/native/${name} (${`fake ${name}`.length} B) to ${binDir}\n`).join(''),
    );
    expect(run.status).toBe(0);
    expect(listing(binDir)).toEqual(LIBRARIES); // no libonnxruntime.so, nothing partial left behind
    for (const name of LIBRARIES) expect(readFileSync(join(binDir, name), 'utf8')).toBe(`fake ${name}`);
    expect(listing(ORT_BIN)).toEqual(before);
    expect(run.stdout).toContain(`installed ${LIBRARIES.join(', ')}\n  in ${binDir}\n  from ${nupkg}\n`);
    expect(run.stdout).toContain('KILN_ORT_BIN_DIR sent the libraries outside onnxruntime-node');
    if (!CUDA_INSTALLED) expect(run.stdout).toMatch(/^ {2}cuda +not loadable: onnxruntime-node was installed without its CUDA provider/m);

    // A report that looks in the same folder finds them there.
    const report = JSON.parse(doctor(['--json'], { KILN_ORT_BIN_DIR: binDir }).stdout);
    expect(report.onnxruntime.cudaProvider).toMatchObject({ installed: true, missing: [] });
  });

  test('--json reports what was installed and the providers tried again', () => {
    const binDir = tempDir('kiln-ort-bin-');
    const run = doctor(['--install', 'cuda', '--from', fakeNupkg(tempDir()), '--json'], { KILN_ORT_BIN_DIR: binDir });
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.installed).toMatchObject({ binDir, files: LIBRARIES, inOnnxRuntime: false });
    expect(result.providers.map((p: Provider) => p.name)).toEqual(['cuda', 'tensorrt']);
  });

  test('a package of another version, or without a library, is refused before anything is written', () => {
    const binDir = tempDir('kiln-ort-bin-');
    const older = doctor(['--install', 'cuda', '--from', fakeNupkg(tempDir(), { version: '1.29.0' })], { KILN_ORT_BIN_DIR: binDir });
    expect(older.status).toBe(2);
    expect(older.stderr).toContain(
      `is Microsoft.ML.OnnxRuntime.Gpu.Linux 1.29.0, but onnxruntime-node ${ORT_VERSION} needs Microsoft.ML.OnnxRuntime.Gpu.Linux ${GPU_VERSION}`,
    );
    const partial = doctor(['--install', 'cuda', '--from', fakeNupkg(tempDir(), { without: LIBRARIES[0] })], { KILN_ORT_BIN_DIR: binDir });
    expect(partial.status).toBe(2);
    expect(partial.stderr).toMatch(
      /^error KILN_ERR_USAGE: --from .* has no runtimes\/linux-x64\/native\/libonnxruntime_providers_cuda\.so;/m,
    );
    const notZip = doctor(['--install', 'cuda', '--from', join(REPO_ROOT, 'package.json')], { KILN_ORT_BIN_DIR: binDir });
    expect(notZip.status).toBe(2);
    expect(notZip.stderr).toContain('is not a .nupkg: a .nupkg is a zip file');
    expect(listing(binDir)).toEqual([]);
  });

  test('--from without --install is a usage error', () => {
    const run = doctor(['--from', 'x.nupkg']);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('error KILN_ERR_USAGE: --from names the package to install from');
  });

  // The real install script writes into onnxruntime-node's own folder and needs api.nuget.org: a
  // fake stands in for it, failing the way the real one does offline.
  test('an install script that cannot reach api.nuget.org: exit 1, its output, and the offline route', () => {
    const script = join(tempDir(), 'install.js');
    writeFileSync(
      script,
      [
        'console.log(`ONNXRUNTIME_NODE_INSTALL=${process.env.ONNXRUNTIME_NODE_INSTALL}`);',
        // The real script does nothing when these say it runs under `npm run` in its own project.
        'console.log(`npm_config_local_prefix=${process.env.npm_config_local_prefix} npm_package_json=${process.env.npm_package_json}`);',
        "console.error('Error: getaddrinfo ENOTFOUND api.nuget.org\\n    at GetAddrInfoReqWrap.onlookupall (node:dns:122:26)');",
        'process.exit(1);',
      ].join('\n'),
    );
    const binDir = tempDir('kiln-ort-bin-');
    const asNpmRunsIt = { npm_config_local_prefix: REPO_ROOT, npm_package_json: join(REPO_ROOT, 'package.json') };
    const run = doctor(['--install', 'cuda'], { KILN_ORT_INSTALL_SCRIPT: script, KILN_ORT_BIN_DIR: binDir, ...asNpmRunsIt });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      `$ ONNXRUNTIME_NODE_INSTALL=cuda12 node ${script}\nONNXRUNTIME_NODE_INSTALL=cuda12\nnpm_config_local_prefix=undefined npm_package_json=undefined\n`,
    );
    const file = `microsoft.ml.onnxruntime.gpu.linux.${GPU_VERSION}.nupkg`;
    expect(run.stderr).toContain(
      [
        "error KILN_ERR_PROVIDER_UNAVAILABLE: onnxruntime-node's install script failed (exit 1): Error: getaddrinfo ENOTFOUND api.nuget.org",
        `  It downloads Microsoft.ML.OnnxRuntime.Gpu.Linux ${GPU_VERSION} from api.nuget.org, which this machine must reach (through a proxy: set GLOBAL_AGENT_HTTPS_PROXY).`,
        `  Offline: download https://api.nuget.org/v3-flatcontainer/microsoft.ml.onnxruntime.gpu.linux/${GPU_VERSION}/${file}`,
        '  on a machine that can reach it, copy it here, and run:',
        `    kiln doctor --install cuda --from ${file}`,
      ].join('\n'),
    );
    expect(listing(binDir)).toEqual([]);
  });

  test('an install script that succeeds: the libraries are checked for, and the providers tried again', () => {
    const binDir = tempDir('kiln-ort-bin-');
    const script = join(tempDir(), 'install.js');
    writeFileSync(
      script,
      `const { writeFileSync } = require('node:fs');\nfor (const name of ${JSON.stringify(LIBRARIES)}) writeFileSync(require('node:path').join(process.env.KILN_ORT_BIN_DIR, name), 'fake');\n`,
    );
    const run = doctor(['--install', 'cuda'], { KILN_ORT_INSTALL_SCRIPT: script, KILN_ORT_BIN_DIR: binDir });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`installed ${LIBRARIES.join(', ')}\n  in ${binDir}\n  from api.nuget.org\n`);

    // With all three there, the script (which would find them and do nothing) is not run.
    writeFileSync(script, 'process.exit(7);');
    const again = doctor(['--install', 'cuda'], { KILN_ORT_INSTALL_SCRIPT: script, KILN_ORT_BIN_DIR: binDir });
    expect(again.status).toBe(0);
    expect(again.stderr).toBe(`the CUDA provider's libraries are already in ${binDir}; to replace them, install --from a .nupkg\n`);

    // One that exits 0 without installing anything is not taken at its word.
    writeFileSync(script, '');
    const empty = doctor(['--install', 'cuda'], { KILN_ORT_INSTALL_SCRIPT: script, KILN_ORT_BIN_DIR: tempDir('kiln-ort-bin-') });
    expect(empty.status).toBe(1);
    expect(empty.stderr).toMatch(
      /error KILN_ERR_PROVIDER_UNAVAILABLE: the install finished, but libonnxruntime_providers_cuda\.so, .* are still missing from /,
    );
  });
});
