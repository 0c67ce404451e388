import { createLogs, resolveServerConfig, startServer, type KilnServer } from '@kiln/server';
import type { CommandIO } from '../../command-spec.js';
import type { ParsedArgs, ParsedOptions } from '../../util/parsed.js';
import { flagsToConfig } from './spec.js';

/** Runs the server until SIGTERM or SIGINT, then drains and returns (exit code 0). */
export async function execute(_args: ParsedArgs, options: ParsedOptions, io: CommandIO): Promise<void> {
  const config = resolveServerConfig({
    flags: flagsToConfig(options),
    env: io.env,
    file: options.optionalString('config'),
    tsConfig: options.optionalString('tsConfig'),
    cwd: io.cwd,
  });
  // The CLI's own lines (signals, readiness) go to the server log, in its format.
  const logs = createLogs({ format: config.logFormat, level: config.logLevel, accessLog: config.accessLog, logDir: config.logDir });
  const log = logs.server;
  // Signals are heard from the start: one that comes while models load stops the start-up, and
  // the loads with it, instead of killing the process and leaving workers and files behind.
  const startup = new AbortController();
  let server: KilnServer | undefined;
  let stopping = false;
  let stopped = () => {};
  const done = new Promise<void>((resolve) => (stopped = resolve));
  const stop = (signal: NodeJS.Signals) => {
    // A second signal (Ctrl-C twice, or a supervisor repeating itself) must not cut the drain short.
    if (stopping) return log.info(`received ${signal} again; still draining`);
    stopping = true;
    log.info(`received ${signal}`);
    if (server === undefined) startup.abort();
    else void server.close().then(stopped);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    server = await startServer(config, logs, startup.signal);
  } catch (error) {
    if (startup.signal.aborted) return; // stopped on request, cleaned up: exit 0
    throw error;
  }
  void server.loaded.then((entries) => {
    if (stopping) return; // stopped before every model had loaded: "stopped" says it all
    const failed = config.models.length === 0 ? 0 : entries.filter((e) => e.state.kind !== 'ready').length;
    log.info(
      `Kiln is ready: ${entries.length - failed} model${entries.length - failed === 1 ? '' : 's'} serving${failed > 0 ? `, ${failed} failed` : ''}`,
    );
  });
  await done;
}
