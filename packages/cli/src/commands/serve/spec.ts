import type { CommandSpec } from '../../command-spec.js';
// The options table alone (no server code): `kiln --help` stays light.
import { SERVER_OPTIONS, optionHelp } from '@kiln/server/options';
import type { ParsedOptions } from '../../util/parsed.js';

/** `--config`, and a flag for every server option (SERVER_OPTIONS: one table for flags, variables, schema and docs). */
const CONFIG_FLAG = {
  flags: '--config <file>',
  description:
    "Server config file, YAML or JSON (keys as in docs/reference/server-config.md), or TorchServe's config.properties (a .properties file). Env KILN_CONFIG",
};
/** TorchServe's `torchserve --start --ts-config`: its keys are translated, and the ones Kiln has no use for are warned. */
const TS_CONFIG_FLAG = {
  flags: '--ts-config <file>',
  description:
    "TorchServe's config.properties, read as the config file (its keys are translated; see docs/reference/server-config.md). Env TS_CONFIG_FILE, read when no other config file is named",
};

/** Commander's option values → server config values, each read as its option says (numbers, lists). */
export function flagsToConfig(options: ParsedOptions): Record<string, unknown> {
  const given = new Map(options.entries());
  const config: Record<string, unknown> = {};
  for (const [key, o] of Object.entries(SERVER_OPTIONS)) {
    const value = given.get(key);
    if (value !== undefined) config[key] = o.fromFlag(value);
  }
  return config;
}

export const serveCommand: CommandSpec = {
  name: 'serve',
  summary: 'Serve model archives over HTTP (TorchServe inference API)',
  description:
    'Loads each archive into worker threads (or processes) and serves it with dynamic batching. Runs in the foreground; SIGTERM or SIGINT drains accepted requests and exits 0. Precedence: flags > KILN_* environment > config file (--config or --ts-config) > defaults. Every address binds to 127.0.0.1 unless told otherwise.',
  options: [CONFIG_FLAG, TS_CONFIG_FLAG, ...Object.values(SERVER_OPTIONS).map((o) => ({ flags: o.flag, description: optionHelp(o) }))],
  load: () => import('./cli.js'),
};
