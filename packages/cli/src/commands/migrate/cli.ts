import { relative } from 'node:path';
import type { CommandIO } from '../../command-spec.js';
import type { ParsedArgs, ParsedOptions } from '../../util/parsed.js';
import { migrate } from './migrate.js';

export async function execute(args: ParsedArgs, options: ParsedOptions, io: CommandIO): Promise<void> {
  const result = await migrate({
    input: args.string(0),
    out: options.optionalString('out'),
    force: options.boolean('force'),
    modelName: options.optionalString('modelName'),
    version: options.optionalString('version'),
    handler: options.optionalString('handler'),
    serializedFile: options.optionalString('serializedFile'),
    cwd: io.cwd,
  });
  for (const warning of result.warnings) io.stderr(`warning: ${warning}\n`);
  const where = relative(io.cwd, result.dir) || '.';
  const { model, handler } = result;
  const how =
    handler.kind === 'builtin'
      ? `Kiln's built-in ${handler.kiln} handler`
      : `a TypeScript skeleton in ${result.written.includes('src/handler.ts') ? 'src/handler.ts' : 'src/'}`;
  io.stdout(
    [
      `migrated TorchServe model ${model.modelName} ${model.modelVersion} to ${where}/ (handler: ${how}; ${result.warnings.length} warning${result.warnings.length === 1 ? '' : 's'}):`,
      ...result.written.map((file) => `  ${file}`),
      'next (MIGRATION.md says more):',
      `  cd ${where}`,
      ...result.next.map((command) => `  ${command}`),
      '',
    ].join('\n'),
  );
}
