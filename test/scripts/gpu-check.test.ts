import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { processesUsing } from '../support/hygiene.js';
import { REPO_ROOT, tempDir } from '../support/kiln.js';
import { noSoftVulkan, requireSoftVulkan } from '../support/soft-vulkan.js';

// scripts/gpu-check.sh is written for the device machine (an H200, reached once per session); what
// a machine without a GPU can check is its CPU rehearsal, which runs every stage the GPU run does,
// and its refusal to call a CPU figure a GPU one.

interface Check {
  name: string;
  value: string;
  target: string;
  pass: boolean | null;
}

interface Report {
  mode: string;
  exitCode: number;
  pass: boolean;
  probe: { providers: { name: string; loadable: boolean; reason?: string }[] };
  providers: {
    provider: string;
    device: string;
    inproc: {
      batches: { batch: number; runs: number; imagesPerS: number; msPerRun: number }[];
      best: { batch: number; imagesPerS: number };
    };
    correctness: { against: string; maxAbsDiff: number; tolerance: number };
    kiln: {
      imagesPerS: number;
      ratio: number;
      meanBatchSize: number;
      providerOk: boolean;
      answerMaxAbsDiff: number;
      inUse: { deviceType: string; workers: string[] };
      fromMetrics: { provider: string; device: string };
      errors: Record<string, number>;
    };
    checks: Check[];
    errors: string[];
  }[];
}

const script = (name: string, env: NodeJS.ProcessEnv, timeout = 35_000) =>
  spawnSync('bash', [join(REPO_ROOT, 'scripts', name), ...(name === 'gpu-pack.sh' ? ['--dry-run'] : [])], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout,
    env: { ...process.env, ...env },
  });

const hasVulkanLoader = /libvulkan\.so\.1 /.test(spawnSync('ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? '');

test('the CPU rehearsal runs every stage and reports the figures, cpu against cpu', () => {
  const out = tempDir('kiln-gpu-check-out-');
  const tmp = tempDir('kiln-gpu-check-tmp-');
  const run = script('gpu-check.sh', {
    OUT: out,
    TMPDIR: tmp,
    KILN_GPU_CHECK_PROVIDER: 'cpu',
    KILN_GPU_CHECK_WARMUP: '0.2',
    KILN_GPU_CHECK_SECONDS: '0.5',
    KILN_GPU_CHECK_KILN_SECONDS: '1',
  });
  // 1 is a check that failed: on a busy 2-core machine the ratio may; the figures must be there either way.
  expect(run.stderr).toBe('');
  expect([0, 1], run.stdout).toContain(run.status);

  const text = run.stdout;
  expect(text).toContain('running in place in');
  expect(text).toContain('== execution providers (probe) ==');
  expect(text).toMatch(/^cpu +loads$/m);
  for (const batch of [1, 8, 32]) expect(text).toMatch(new RegExp(`^batch +${batch}: +[\\d.]+ images/s, +[\\d.]+ ms per run`, 'm'));
  expect(text).toMatch(/max \|cpu − cpu\| = \S+ \(outputs up to [\d.]+; tolerance 1\.00e-3\)/);
  expect(text).toContain('describe: deviceType cpu, executionProviders [cpu], workers on [cpu]');
  expect(text).toContain('metrics: kiln_model_execution_provider{provider="cpu", device="cpu"} 1');
  expect(text).toMatch(/^ratio to in-process \(batch \d+, [\d.]+ images\/s\): [\d.]+×$/m);
  expect(text).toContain('== summary (CPU rehearsal: cpu against cpu, no GPU used; not a GPU result) ==');
  expect(text).toMatch(new RegExp(`^overall: ${run.status === 0 ? 'PASS' : 'FAIL'} \\(CPU rehearsal\\)$`, 'm'));
  // $OUT holds what was printed, and the figures.
  expect(readFileSync(join(out, 'gpu-check.txt'), 'utf8')).toBe(text);
  const report = JSON.parse(readFileSync(join(out, 'gpu-check.json'), 'utf8')) as Report;
  expect(report).toMatchObject({ mode: 'cpu-rehearsal', exitCode: run.status, pass: run.status === 0 });
  expect(report.providers).toHaveLength(1);
  const [cpu] = report.providers;
  expect(cpu).toMatchObject({ provider: 'cpu', device: 'cpu', errors: [] });
  expect(cpu!.inproc.batches.map((b) => b.batch)).toEqual([1, 8, 32]);
  for (const b of cpu!.inproc.batches) {
    expect(b.imagesPerS).toBeGreaterThan(0);
    expect(b.msPerRun).toBeCloseTo((1000 * b.batch) / b.imagesPerS, 6);
  }
  expect(cpu!.inproc.best.imagesPerS).toBe(Math.max(...cpu!.inproc.batches.map((b) => b.imagesPerS)));
  expect(cpu!.correctness).toMatchObject({ against: 'cpu', tolerance: 1e-3 });
  expect(cpu!.correctness.maxAbsDiff).toBeLessThan(1e-3);
  const kiln = cpu!.kiln;
  expect(kiln).toMatchObject({
    providerOk: true,
    errors: {},
    inUse: { deviceType: 'cpu', workers: ['cpu'] },
    fromMetrics: { provider: 'cpu', device: 'cpu' },
  });
  expect(kiln.imagesPerS).toBeGreaterThan(0);
  expect(kiln.ratio).toBeCloseTo(kiln.imagesPerS / cpu!.inproc.best.imagesPerS, 9);
  expect(kiln.meanBatchSize).toBeGreaterThanOrEqual(1);
  expect(kiln.answerMaxAbsDiff).toBeLessThan(1e-3);
  const ratioCheck = cpu!.checks.find((c) => c.name === 'Kiln / in-process');
  expect(ratioCheck).toMatchObject({ target: '≥ 0.9×', pass: kiln.ratio >= 0.9 });
  // Everything it started (the server, its workers, the load generators) has ended.
  expect(processesUsing(tmp)).toEqual([]);
}, 45_000);

test.skipIf(noSoftVulkan)(
  'on WebGPU (Mesa software Vulkan): every stage on a provider that is not the CPU, and not called a GPU result',
  () => {
    const out = tempDir('kiln-gpu-check-out-');
    const tmp = tempDir('kiln-gpu-check-tmp-');
    // The conv net takes about 0.2 s an image on lavapipe: few and short windows, 8 clients.
    const run = script(
      'gpu-check.sh',
      {
        ...requireSoftVulkan(),
        OUT: out,
        TMPDIR: tmp,
        KILN_GPU_CHECK_PROVIDER: 'webgpu',
        KILN_GPU_CHECK_WARMUP: '0.2',
        KILN_GPU_CHECK_SECONDS: '0.5',
        KILN_GPU_CHECK_KILN_SECONDS: '2',
        KILN_GPU_CHECK_BATCHES: '1,4',
        KILN_GPU_CHECK_BATCH_SIZE: '4',
        KILN_GPU_CHECK_CONCURRENCY: '8',
        KILN_GPU_CHECK_LOAD_PROCESSES: '1',
      },
      90_000,
    );
    expect([0, 1], run.stdout).toContain(run.status);
    const text = run.stdout;
    expect(text).toMatch(/^webgpu +loads$/m);
    expect(text).toContain('== in-process session.run on webgpu (1 intra-op thread) ==');
    expect(text).toMatch(/max \|webgpu − cpu\| = \S+ \(outputs up to [\d.]+; tolerance 1\.00e-3\)/);
    expect(text).toContain('describe: deviceType gpu, executionProviders [webgpu], workers on [webgpu]');
    expect(text).toContain('metrics: kiln_model_execution_provider{provider="webgpu", device="gpu"} 1');
    expect(text).toContain('GPUs mid-window: none in /metrics (nvidia-smi lists no GPU here)');
    expect(text).toContain("describe's gpuUsage mid-window: N/A");
    expect(text).toContain(
      '== summary (no GPU listed by nvidia-smi: the provider ran on the adapter it found, a software one perhaps; not a GPU result) ==',
    );
    const report = JSON.parse(readFileSync(join(out, 'gpu-check.json'), 'utf8')) as Report;
    expect(report).toMatchObject({ mode: 'gpu', exitCode: run.status });
    const [webgpu] = report.providers;
    expect(webgpu).toMatchObject({ provider: 'webgpu', device: 'gpu', errors: [] });
    // WebGPU's kernels against the CPU's: the check that would catch a wrong shader, and it must pass.
    expect(webgpu!.correctness).toMatchObject({ against: 'cpu', tolerance: 1e-3 });
    expect(webgpu!.correctness.maxAbsDiff).toBeLessThan(1e-3);
    expect(webgpu!.kiln).toMatchObject({ providerOk: true, errors: {}, inUse: { deviceType: 'gpu', workers: ['webgpu'] } });
    expect(webgpu!.kiln.answerMaxAbsDiff).toBeLessThan(1e-3);
    // Every row of the summary keeps its columns apart.
    for (const row of text
      .slice(text.indexOf('== summary'))
      .split('\n')
      .filter((l) => l.startsWith('webgpu  '))) {
      expect(row).not.toMatch(/\S(PASS|FAIL)$/);
    }
    expect(processesUsing(tmp)).toEqual([]);
  },
  100_000,
);

test.skipIf(hasVulkanLoader)('asked for webgpu where it does not load, it refuses at once and names the missing loader', () => {
  const out = tempDir('kiln-gpu-check-out-');
  const started = performance.now();
  const run = script('gpu-check.sh', { OUT: out, KILN_GPU_CHECK_PROVIDER: 'webgpu' });
  expect(run.status, run.stdout).toBe(2);
  expect(performance.now() - started).toBeLessThan(20_000);
  expect(run.stdout).toMatch(
    /gpu-check: cannot check the GPU: webgpu does not load here\. webgpu: no Vulkan loader \(libvulkan\.so\.1 is missing\)/,
  );
  expect(run.stdout).toMatch(/^overall: NOT RUN$/m);
  expect(run.stdout).not.toContain('== in-process');
  const report = JSON.parse(readFileSync(join(out, 'gpu-check.json'), 'utf8')) as Report;
  expect(report).toMatchObject({ mode: 'gpu', exitCode: 2, pass: false, providers: [] });
  expect(report.probe.providers.find((p) => p.name === 'webgpu')).toMatchObject({ loadable: false });
});

test('gpu-pack.sh --dry-run prints the plan and the device call, and builds nothing', () => {
  const run = script('gpu-pack.sh', {}, 30_000);
  expect(run.status, run.stderr).toBe(0);
  expect(run.stdout).toMatch(/^build +would run npm run build$/m);
  expect(run.stdout).toMatch(/^node +(up to date|would compress|this machine is)/m);
  expect(run.stdout).toMatch(/^runtime +(up to date|would pack the 3 dist folders and \d+ packages)/m);
  expect(run.stdout).toMatch(/^debs +(up to date|would apt-get download)/m);
  expect(run.stdout).toMatch(/^ {2}together +[\d.]+ MiB of the 60 MiB/m);
  expect(run.stdout).toContain('command: bash scripts/gpu-check.sh');
  expect(run.stdout).toContain('carry:   [".gpu"]');
});
