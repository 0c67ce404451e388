import type { ParsedArgs, ParsedOptions } from './util/parsed.js';

/**
 * Commands and their options are data: main.ts builds the parser from them and
 * docs/reference/cli.md is generated from them, so the two cannot drift apart.
 */
export interface OptionSpec {
  /** Commander flags, e.g. `-v, --version <version>`. */
  flags: string;
  description: string;
  required?: boolean;
  default?: string | boolean;
  choices?: readonly string[];
}

export interface ArgumentSpec {
  /** Commander syntax: `<archive>`, `[dir]`, `<files...>`. */
  name: string;
  description: string;
}

/** What a command may write to: results to stdout, diagnostics and progress to stderr. */
export interface CommandIO {
  cwd: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** True when stderr is a terminal, so progress and colour are welcome. */
  interactive: boolean;
  env: NodeJS.ProcessEnv;
}

export interface CommandModule {
  /** `args` and `options` as commander parsed them, read with their types (util/parsed.ts). */
  execute(args: ParsedArgs, options: ParsedOptions, io: CommandIO): Promise<void>;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Longer help text, shown by `kiln help <command>` and in the docs. */
  description?: string;
  arguments?: readonly ArgumentSpec[];
  options: readonly OptionSpec[];
  /** Loaded only when the command runs, so `kiln --help` never loads esbuild or ONNX Runtime. */
  load: () => Promise<CommandModule>;
}
