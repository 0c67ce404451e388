import { statSync, type Stats } from 'node:fs';
import { relative } from 'node:path';
import { cliError } from '../errors.js';

const kB = 1024;

/** 1536 → `1.5 KiB`. */
export function humanSize(bytes: number): string {
  if (bytes < kB) return `${bytes} B`;
  if (bytes < kB * kB) return `${(bytes / kB).toFixed(1)} KiB`;
  if (bytes < kB ** 3) return `${(bytes / kB ** 2).toFixed(1)} MiB`;
  return `${(bytes / kB ** 3).toFixed(2)} GiB`;
}

/** The file a flag names, or KILN_ERR_FILE_NOT_FOUND naming the flag and where relative paths start. */
export function statOrThrow(file: string, flag: string, cwd: string): Stats {
  try {
    return statSync(file);
  } catch {
    throw cliError(
      'KILN_ERR_FILE_NOT_FOUND',
      `${flag} ${relative(cwd, file) || file}: no such file; check the path (relative paths start from ${cwd})`,
      {
        details: { flag, path: file },
      },
    );
  }
}
