import { pino, type Logger } from 'pino';
import { ConfigError } from '../errors.js';

/** pino's levels, most verbose first; `--log-level` accepts exactly these. */
export const LogLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LogLevels)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LogLevels as readonly string[]).includes(value);
}

/** Structured JSON-lines logs on stderr, so stdout stays free for results. */
export function makeLogger(level: string): Logger {
  // The CLI rejects other values while parsing; this catches programmatic callers, whom
  // pino would otherwise answer with "default level:… must be included in custom levels".
  if (!isLogLevel(level)) throw new ConfigError('--log-level', `expected one of ${LogLevels.join(', ')}, got "${level}"`);
  return pino({ level, base: { app: 'textstream' } }, pino.destination({ fd: 2, sync: true }));
}
