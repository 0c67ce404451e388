import type { CommandSpec, OptionSpec } from '../command-spec.js';
import { COMMANDS } from '../commands/index.js';

const HEADER = `# CLI reference

<!-- Generated from packages/cli/src/commands/*/spec.ts by \`npm run docs:cli\`. Do not edit by hand:
     a test fails when this page and the option definitions disagree. -->

\`kiln <command> [options]\`. \`kiln --help\` and \`kiln <command> --help\` print the same information.

## Exit codes

| code | meaning |
|---|---|
| 0 | success |
| 1 | failure: a file is missing, a model or config is invalid, the output exists, an archive does not match its manifest |
| 2 | usage error: a flag is missing, unknown or malformed (a bad \`--model-name\`, an unknown \`--archive-format\`) |

Errors print as \`error KILN_ERR_CODE: message\` on stderr; the codes are listed in [errors.md](errors.md).
Results go to stdout, progress and diagnostics to stderr.
`;

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function renderOption(option: OptionSpec): string {
  const notes: string[] = [];
  if (option.required) notes.push('required');
  if (option.default !== undefined) notes.push(`default \`${String(option.default)}\``);
  if (option.choices) notes.push(`one of ${option.choices.map((c) => `\`${c}\``).join(', ')}`);
  return `| \`${option.flags}\` | ${escapeCell(option.description)} | ${notes.join('; ')} |`;
}

function renderCommand(spec: CommandSpec): string {
  const args = (spec.arguments ?? []).map((a) => ` ${a.name}`).join('');
  const lines = [`## kiln ${spec.name}`, '', `\`kiln ${spec.name}${args} [options]\``, '', spec.summary + '.', ''];
  if (spec.description !== undefined) lines.push(spec.description, '');
  if ((spec.arguments ?? []).length > 0) {
    lines.push('| argument | meaning |', '|---|---|');
    for (const arg of spec.arguments ?? []) lines.push(`| \`${arg.name}\` | ${escapeCell(arg.description)} |`);
    lines.push('');
  }
  lines.push('| option | meaning | notes |', '|---|---|---|');
  for (const option of spec.options) lines.push(renderOption(option));
  return lines.join('\n');
}

/** docs/reference/cli.md, rendered from the same specs the parser is built from. */
export function renderCliReference(commands: readonly CommandSpec[] = COMMANDS): string {
  return `${HEADER}\n${commands.map(renderCommand).join('\n\n')}\n`;
}
