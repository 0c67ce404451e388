import { relative } from 'node:path';
import type { CommandIO } from '../../command-spec.js';
import { init } from './init.js';

export async function execute(args: string[], options: Record<string, unknown>, io: CommandIO): Promise<void> {
  const result = await init({ dir: args[0]!, template: String(options.template), cwd: io.cwd });
  const where = relative(io.cwd, result.dir) || '.';
  io.stdout(`${result.files.map((f) => `  ${f}`).join('\n')}\n`);
  io.stderr(
    `created ${where} from the ${result.template} template. Next:\n  cd ${where}\n  npm install\n  npm test\n  npm run archive\n  npm run predict\n`,
  );
}
