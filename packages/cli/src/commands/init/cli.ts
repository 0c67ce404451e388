import { relative } from 'node:path';
import type { CommandIO } from '../../command-spec.js';
import type { ParsedArgs, ParsedOptions } from '../../util/parsed.js';
import { init } from './init.js';
import { TEMPLATES } from './spec.js';

export async function execute(args: ParsedArgs, options: ParsedOptions, io: CommandIO): Promise<void> {
  const result = await init({
    dir: args.string(0),
    template: options.choice('template', TEMPLATES),
    cwd: io.cwd,
    sdk: options.optionalString('sdk'),
  });
  const where = relative(io.cwd, result.dir) || '.';
  io.stdout(`${result.files.map((f) => `  ${f}`).join('\n')}\n`);
  io.stderr(
    `created ${where} from the ${result.template} template. Next:\n  cd ${where}\n  npm install\n  npm test\n  npm run archive\n  npm run predict\n`,
  );
}
