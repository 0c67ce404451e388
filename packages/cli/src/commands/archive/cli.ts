import type { CommandIO } from '../../command-spec.js';
import { humanSize } from '../../util/files.js';
import type { ParsedArgs, ParsedOptions } from '../../util/parsed.js';
import { archive, type ArchiveOptions } from './archive.js';
import { ARCHIVE_FORMATS } from './spec.js';

export async function execute(_args: ParsedArgs, options: ParsedOptions, io: CommandIO): Promise<void> {
  const opts: ArchiveOptions = {
    modelName: options.string('modelName'),
    version: options.string('version'),
    handler: options.string('handler'),
    serializedFile: options.optionalString('serializedFile'),
    extraFiles: options.optionalString('extraFiles'),
    configFile: options.optionalString('configFile'),
    exportPath: options.optionalString('exportPath'),
    archiveFormat: options.choice('archiveFormat', ARCHIVE_FORMATS),
    description: options.optionalString('description'),
    force: options.boolean('force'),
    quiet: options.boolean('quiet'),
  };
  const result = await archive(opts, io);
  if (opts.quiet === true) return;
  const total = result.files.reduce((n, f) => n + f.size, 0);
  io.stdout(`${result.path}\n`);
  io.stderr(`archived ${result.files.length} files (${humanSize(total)}) as ${result.format}\n`);
}
