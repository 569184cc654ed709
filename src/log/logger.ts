import pino from 'pino';

export type Logger = pino.Logger;

/** JSON lines on stdout; one per request from the server's request-log middleware. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } });
}
