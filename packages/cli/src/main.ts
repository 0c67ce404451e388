import { Command, CommanderError, Option } from 'commander';
import { isKilnError } from '@kiln/handler-sdk/errors';
import type { CommandIO, CommandSpec } from './command-spec.js';
import { COMMANDS } from './commands/index.js';
import { USAGE_ERROR_CODES } from './errors.js';
import { CLI_VERSION } from './version.js';
import { ParsedArgs, ParsedOptions } from './util/parsed.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Builds the commander program from the command specs. Actions are loaded lazily. */
export function buildProgram(io: CommandIO): Command {
  const program = new Command('kiln')
    .description('Serve ONNX models behind TypeScript handlers')
    .version(CLI_VERSION, '--version', 'Print the version of kiln')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput(output(io));
  for (const spec of COMMANDS) program.addCommand(buildCommand(spec, io));
  return program;
}

/** Parser errors carry the usage code like every other error: `error KILN_ERR_USAGE: ...`. */
function output(io: CommandIO) {
  return {
    writeOut: io.stdout,
    writeErr: io.stderr,
    outputError: (text: string, write: (text: string) => void) => write(text.replace(/^error: /, 'error KILN_ERR_USAGE: ')),
  };
}

function buildCommand(spec: CommandSpec, io: CommandIO): Command {
  const command = new Command(spec.name).summary(spec.summary).description(spec.description ?? spec.summary);
  command.exitOverride().configureOutput(output(io));
  for (const arg of spec.arguments ?? []) command.argument(arg.name, arg.description);
  for (const o of spec.options) {
    const option = new Option(o.flags, o.description);
    if (o.required) option.makeOptionMandatory();
    if (o.default !== undefined) option.default(o.default);
    if (o.choices) option.choices(o.choices);
    command.addOption(option);
  }
  command.action(async (...params: unknown[]) => {
    const args = new ParsedArgs(params.slice(0, (spec.arguments ?? []).length));
    const options = new ParsedOptions(given(command));
    const module = await spec.load();
    await module.execute(args, options, io);
  });
  return command;
}

/**
 * The command's option values. A `--no-x` switch that was not given leaves `x` unset (commander
 * would set it true), so that a variable or config file can still turn `x` off.
 */
function given(command: Command): Record<string, unknown> {
  const values = { ...command.opts() };
  for (const option of command.options) {
    const key = option.attributeName();
    if (option.negate && command.getOptionValueSource(key) === 'default') delete values[key];
  }
  return values;
}

/** Runs the CLI and returns the exit code: 0 success, 1 failure, 2 usage error. Never exits. */
export async function main(argv: readonly string[], io: CommandIO = processIO()): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return EXIT_OK;
  } catch (error) {
    return report(error, io);
  }
}

function report(error: unknown, io: CommandIO): number {
  if (error instanceof CommanderError) {
    if (error.exitCode === 0) return EXIT_OK; // --help, --version
    // commander has already printed "error: ..."; point at the help.
    io.stderr(`Run 'kiln help' or 'kiln <command> --help' for usage.\n`);
    return EXIT_USAGE;
  }
  if (isKilnError(error)) {
    io.stderr(`error ${error.code}: ${error.message}\n`);
    return USAGE_ERROR_CODES.has(error.code) ? EXIT_USAGE : EXIT_FAILURE;
  }
  io.stderr(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return EXIT_FAILURE;
}

export function processIO(): CommandIO {
  return {
    cwd: process.cwd(),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    interactive: process.stderr.isTTY === true,
    env: process.env,
  };
}
