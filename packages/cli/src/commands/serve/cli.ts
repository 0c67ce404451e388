import { resolveServerConfig, startServer, type KilnServer } from '@kiln/server';
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
  // Signals are heard from the start: one that comes while models load stops the start-up, and
  // the loads with it, instead of killing the process and leaving workers and files behind.
  const startup = new AbortController();
  let server: KilnServer | undefined;
  let stopping = false;
  let stopped = () => {};
  const done = new Promise<void>((resolve) => (stopped = resolve));
  const stop = (signal: NodeJS.Signals) => {
    // A second signal (Ctrl-C twice, or a supervisor repeating itself) must not cut the drain short.
    if (stopping) return io.stdout(`received ${signal} again; still draining\n`);
    stopping = true;
    io.stdout(`received ${signal}\n`);
    if (server === undefined) startup.abort();
    else void server.close().then(stopped);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    server = await startServer(
      config,
      {
        info: (m) => io.stdout(`${m}\n`),
        warn: (m) => io.stderr(`${m}\n`),
        error: (m) => io.stderr(`${m}\n`),
      },
      startup.signal,
    );
  } catch (error) {
    if (startup.signal.aborted) return; // stopped on request, cleaned up: exit 0
    throw error;
  }
  void server.loaded.then((entries) => {
    if (stopping) return; // stopped before every model had loaded: "stopped" says it all
    const failed = config.models.length === 0 ? 0 : entries.filter((e) => e.state.kind !== 'ready').length;
    io.stdout(
      `Kiln is ready: ${entries.length - failed} model${entries.length - failed === 1 ? '' : 's'} serving${failed > 0 ? `, ${failed} failed` : ''}\n`,
    );
  });
  await done;
}
