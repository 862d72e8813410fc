import { pino, type Logger } from 'pino';

/** Structured JSON-lines logs on stderr, so stdout stays free for results. */
export function makeLogger(level: string): Logger {
  return pino({ level, base: { app: 'textstream' } }, pino.destination({ fd: 2, sync: true }));
}
