import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Processes whose TMPDIR is `dir` or a folder inside it: a server started with its own TMPDIR, and
 * every worker it started (each gets a temp folder below the server's), even one that outlived the
 * server and was adopted by init.
 */
export function processesUsing(dir: string): number[] {
  const mark = new RegExp(`\0TMPDIR=${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[\0/]`);
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return mark.test(`\0${readFileSync(join('/proc', pid, 'environ'), 'latin1')}`);
      } catch {
        return false; // ended meanwhile, or not ours to read
      }
    })
    .map(Number);
}

/** Every file and folder under `dir`, relative to it, sorted. */
export function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => {
      const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      return entry.isDirectory() ? [path, ...filesUnder(dir, path)] : [path];
    })
    .sort();
}
