import { resolveServerConfig, startServer } from '@kiln/server';
import type { CommandIO } from '../../command-spec.js';
import type { ParsedArgs, ParsedOptions } from '../../util/parsed.js';
import { flagsToConfig } from './spec.js';

/** Runs the server until SIGTERM or SIGINT, then drains and returns (exit code 0). */
export async function execute(_args: ParsedArgs, options: ParsedOptions, io: CommandIO): Promise<void> {
  const config = resolveServerConfig({
    flags: flagsToConfig(options),
    env: io.env,
    file: options.optionalString('config'),
    cwd: io.cwd,
  });
  const server = await startServer(config, {
    info: (m) => io.stdout(`${m}\n`),
    warn: (m) => io.stderr(`${m}\n`),
    error: (m) => io.stderr(`${m}\n`),
  });
  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      // A second signal (Ctrl-C twice, or a supervisor repeating itself) must not cut the drain short.
      if (stopping) return io.stdout(`received ${signal} again; still draining\n`);
      stopping = true;
      io.stdout(`received ${signal}\n`);
      void server.close().then(resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  void server.loaded.then((entries) => {
    const failed = config.models.length === 0 ? 0 : entries.filter((e) => e.state.kind !== 'ready').length;
    io.stdout(
      `Kiln is ready: ${entries.length - failed} model${entries.length - failed === 1 ? '' : 's'} serving${failed > 0 ? `, ${failed} failed` : ''}\n`,
    );
  });
  await stopped;
}
