/**
 * Structured logs, one JSON object per line on stdout, one namespace per subsystem (STYLE.md
 * "Logging"). No keys, certificates or personal data go into a record.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface LogRecord {
  time: string;
  level: LogLevel;
  ns: string;
  msg: string;
  [field: string]: unknown;
}

export type LogSink = (record: LogRecord) => void;

export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export const stdoutSink: LogSink = (record) => {
  if (record.level === 'debug' && !process.env.DEBUG) return;
  process.stdout.write(`${JSON.stringify(record)}\n`);
};

export function createLogger(ns: string, sink: LogSink = stdoutSink): Logger {
  return (level, msg, fields) => sink({ time: new Date().toISOString(), level, ns, msg, ...fields });
}
