import { readFileSync } from 'node:fs';

/** Resident memory of a process in bytes (Linux /proc), or 0 where it cannot be read. */
export function residentBytes(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? 0 : Number(kb) * 1024;
  } catch {
    return 0;
  }
}
