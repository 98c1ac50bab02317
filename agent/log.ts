/** Structured JSON logs (pino) on stderr, so command output on stdout stays clean. */
import { pino } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type Logger = pino.Logger;

/**
 * Belt and braces: these never belong in a log line, whatever a caller passes.
 * Secrets by name, request headers that carry them, and file contents (a
 * `content` field, e.g. a resource's spec) — log lines name paths, never values.
 */
const REDACT_PATHS = [
  'password',
  'token',
  'secret',
  'authorization',
  '*.password',
  '*.token',
  '*.secret',
  '*.authorization',
  '*.*.password',
  '*.*.secret',
  'headers.authorization',
  '*.headers.authorization',
  'headers["x-hub-signature-256"]',
  '*.headers["x-hub-signature-256"]',
  'content',
  '*.content',
  '*.*.content',
  '*.*.*.content',
];

/** A logger writing JSON lines to `destination` (default: stderr, synchronously). */
export function createLogger(level: LogLevel = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { name: 'steward' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '***' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 2, sync: true }),
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
