import type { CommandIO } from '../../command-spec.js';
import { archive, type ArchiveOptions } from './archive.js';

const kB = 1024;

function humanSize(bytes: number): string {
  if (bytes < kB) return `${bytes} B`;
  if (bytes < kB * kB) return `${(bytes / kB).toFixed(1)} KiB`;
  if (bytes < kB ** 3) return `${(bytes / kB ** 2).toFixed(1)} MiB`;
  return `${(bytes / kB ** 3).toFixed(2)} GiB`;
}

export async function execute(_args: string[], options: Record<string, unknown>, io: CommandIO): Promise<void> {
  const opts = options as unknown as ArchiveOptions;
  const result = await archive(opts, io);
  if (opts.quiet === true) return;
  const total = result.files.reduce((n, f) => n + f.size, 0);
  io.stdout(`${result.path}\n`);
  io.stderr(`archived ${result.files.length} files (${humanSize(total)}) as ${result.format}\n`);
}

export { humanSize };
