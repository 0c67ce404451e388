import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes `name`, a shell script, into `dir` (made executable); returns `dir`, to put in front of PATH. */
export function writeCommand(dir: string, name: string, script: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), `#!/bin/sh\n${script}\n`);
  chmodSync(join(dir, name), 0o755);
  return dir;
}

/** What the fake nvidia-smi reports: two H200s, the first busy. */
export const FAKE_GPU_USAGE = [
  { index: 0, uuid: 'GPU-0f3e9a1c', utilizationGpu: 35, utilizationMemory: 12, memoryUsedMib: 4023, memoryTotalMib: 143771 },
  { index: 1, uuid: 'GPU-7c21b0d4', utilizationGpu: 0, utilizationMemory: 0, memoryUsedMib: 1, memoryTotalMib: 143771 },
] as const;

/**
 * An nvidia-smi that answers the two queries Kiln makes (the GPU list, and their usage) as the real
 * one does, and fails on any other arguments, so that a changed query is caught.
 */
export function fakeNvidiaSmi(dir: string): string {
  const list = FAKE_GPU_USAGE.map((g) => `echo '${g.index}, NVIDIA H200, ${g.memoryTotalMib} MiB, 580.159.03'`);
  const usage = FAKE_GPU_USAGE.map(
    (g) => `echo '${g.index}, ${g.uuid}, ${g.utilizationGpu}, ${g.utilizationMemory}, ${g.memoryUsedMib}, ${g.memoryTotalMib}'`,
  );
  return writeCommand(
    dir,
    'nvidia-smi',
    [
      'case "$*" in',
      `'--query-gpu=index,name,memory.total,driver_version --format=csv,noheader') ${list.join('; ')} ;;`,
      `'--query-gpu=index,uuid,utilization.gpu,utilization.memory,memory.used,memory.total --format=csv,noheader,nounits') ${usage.join('; ')} ;;`,
      '*) echo "unexpected arguments: $*" >&2; exit 9 ;;',
      'esac',
    ].join('\n'),
  );
}
