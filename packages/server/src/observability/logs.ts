import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { DestinationStream, Level, Logger } from 'pino';
import type PinoPretty from 'pino-pretty';
import type { AccessRecord } from '../observability/access-record.js';

export type LogFormat = 'json' | 'pretty';
export type LogLevelName = 'debug' | 'info' | 'warn' | 'error';

export interface LogOptions {
  /** json: one JSON object a line; pretty: a time, a level and the message, for people. */
  format: LogFormat;
  level: LogLevelName;
  /** 'off', 'stdout', or a file the access log is appended to. */
  accessLog: string;
  /** Also write the server log to `kiln.log` here, and each model's to `models/<name>.log`. */
  logDir?: string | undefined;
}

/** What the server writes its own lines with; `fields` go into a JSON line as they are. */
export interface ServerLog {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** One model's log. `fields` (the worker's id, the handler's own fields) are kept. */
export interface ModelLog {
  write(level: LogLevelName, message: string, fields: Record<string, unknown>): void;
}

/** The server's logs: its own, one per model, and the access log. */
export interface Logs {
  server: ServerLog;
  /** The log of one model: its workers' output and `context.logger` lines, each tagged with the worker. */
  model(name: string): ModelLog;
  /** Writes one access-log line; undefined when the access log is off. */
  access: ((record: AccessRecord) => void) | undefined;
  /** The least severe level written (handlers' `context.logger` drops the rest before it sends them). */
  level: LogLevelName;
  /** Writes out what is buffered; called when the server stops. */
  flush(): void;
}

/**
 * The server log goes to stdout, as JSON or for people; with a log
 * folder, also to `kiln.log` there. A model's log is the server log's child, tagged `log: "model"`
 * and with the model's name, or with a log folder its own file. The access log is JSON lines,
 * written asynchronously (it is on every request's way out); no request body or header value is
 * ever in it.
 */
export function createLogs(options: LogOptions): Logs {
  // pino is loaded with the first line written (about 30 ms): after the first workers have started.
  let built: Logs | undefined;
  const build = () => (built ??= buildLogs(options));
  const at =
    (level: LogLevelName) =>
    (message: string, fields?: Record<string, unknown>): void =>
      build().server[level]?.(message, fields);
  return {
    server: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
    model: (name) => ({ write: (level, message, fields) => build().model(name).write(level, message, fields) }),
    access: options.accessLog === 'off' ? undefined : (record) => build().access?.(record),
    level: options.level,
    flush: () => built?.flush(),
  };
}

function buildLogs(options: LogOptions): Logs {
  const pino = loadPino();
  const files: Sonic[] = [];
  /** A buffered destination, flushed when the server stops. */
  const track = (destination: Sonic) => {
    files.push(destination);
    return destination;
  };
  const file = (path: string, sync: boolean) => track(pino.destination({ dest: path, sync, mkdir: true, append: true }));
  // The access log is written on every request's way out: lines gather in a 4 KiB buffer and go
  // in one write (one per request cost 5–7% of a small model's latency), and at least each second.
  const buffered = (dest: string | number) => track(pino.destination({ dest, sync: false, mkdir: true, append: true, minLength: 4096 }));
  const base = {
    level: options.level,
    base: undefined, // no pid or hostname on each line: one server is one process
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  // Everything to stdout, warnings and errors too: one stream, in order, as log collectors read it.
  const console = consoleStream(pino, options.format);
  let server: Logger;
  if (options.logDir === undefined) server = pino(base, console);
  else {
    mkdirSync(options.logDir, { recursive: true });
    const streams = [console, file(join(options.logDir, 'kiln.log'), true)].map((stream) => ({ level: 'debug' as const, stream }));
    server = pino(base, pino.multistream(streams));
  }
  const models = new Map<string, ModelLog>();
  const access = options.accessLog === 'off' ? undefined : accessLogger(buffered(options.accessLog === 'stdout' ? 1 : options.accessLog));
  if (access !== undefined) setInterval(() => flushAll(files), 1000).unref();
  return {
    server: asServerLog(server),
    model(name) {
      let log = models.get(name);
      if (log === undefined) {
        const logger =
          options.logDir === undefined
            ? server.child({ log: 'model', model: name })
            : pino(base, file(join(options.logDir, 'models', `${name}.log`), false)).child({ log: 'model', model: name });
        log = { write: (level, message, fields) => logger[level](fields, message) };
        models.set(name, log);
      }
      return log;
    },
    access,
    level: options.level,
    flush: () => flushAll(files, true),
  };
}

function asServerLog(log: Logger): ServerLog {
  const at =
    (level: Level) =>
    (message: string, fields?: Record<string, unknown>): void =>
      fields === undefined ? log[level](message) : log[level](fields, message);
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** stdout, as JSON or for people (colours only on a terminal). */
function consoleStream(pino: Pino, format: LogFormat): DestinationStream {
  if (format === 'json') return pino.destination({ dest: 1, sync: true });
  // Loaded only when asked for: it takes about 20 ms, on the way to the first answer.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pretty({
    destination: 1,
    sync: true,
    colorize: process.stdout.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    singleLine: true,
    ignore: 'log,model,worker',
    // "[linear linear-1.0-w0] message" for a model's lines, as a model log reads best.
    messageFormat: (line, key) => {
      const where = typeof line.model === 'string' ? `[${line.model}${typeof line.worker === 'string' ? ` ${line.worker}` : ''}] ` : '';
      return `${where}${String(line[key])}`;
    },
  });
}

/** Access-log lines are records of one fixed shape: written as JSON through pino's buffered destination. */
function accessLogger(destination: DestinationStream): (record: AccessRecord) => void {
  return (record) => destination.write(`${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`);
}

/**
 * Logs that write through a plain ServerLog (an embedding program's, or `kiln bench`'s silent one):
 * a model's lines become "[model worker] message"; there is no access log.
 */
export function plainLogs(log: ServerLog): Logs {
  return {
    server: log,
    model: (name) => ({
      write(level, message, fields) {
        const worker = typeof fields.worker === 'string' ? ` ${fields.worker}` : '';
        const line = `[${name}${worker}] ${message}`;
        if (level === 'error') log.error(line);
        else if (level === 'warn') log.warn(line);
        else if (level === 'info') log.info(line);
        else log.debug?.(line);
      },
    }),
    access: undefined,
    level: 'info',
    flush: () => {},
  };
}

type Pino = typeof import('pino').pino;
const loadPino = (): Pino => (createRequire(import.meta.url)('pino') as typeof import('pino')).pino;

/** pino's file and stdout destination (sonic-boom). */
type Sonic = ReturnType<Pino['destination']>;

/** Writes out what buffered destinations hold: now (when stopping), or in the background. */
function flushAll(destinations: readonly Sonic[], now = false): void {
  for (const destination of destinations) {
    try {
      if (now) destination.flushSync();
      else destination.flush();
    } catch {
      // nothing buffered yet (sonic-boom throws while its file is still opening)
    }
  }
}
