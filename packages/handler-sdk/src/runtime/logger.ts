import type { Logger } from '../handler/types.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogSink = (level: LogLevel, message: string, fields: Record<string, unknown>) => void;

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger that tags every line with the model and hands it to `sink` (stderr by default). */
export function createLogger(model: string, sink: LogSink = stderrSink, minLevel: LogLevel = 'info'): Logger {
  const log =
    (level: LogLevel) =>
    (message: string, fields: Record<string, unknown> = {}) => {
      if (ORDER[level] >= ORDER[minLevel]) sink(level, message, { model, ...fields });
    };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

export const stderrSink: LogSink = (level, message, fields) => {
  const { model, ...rest } = fields;
  const extra = Object.keys(rest).length === 0 ? '' : ` ${JSON.stringify(rest)}`;
  process.stderr.write(`[${level}] ${String(model)}: ${message}${extra}\n`);
};
