/** Structured JSON logs (pino) on stderr, so command output on stdout stays clean. */
import { pino } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type Logger = pino.Logger;

export function createLogger(level: LogLevel = 'info'): Logger {
  return pino(
    {
      level,
      base: { name: 'steward' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Belt and braces: these never belong in a log line, whatever a caller passes.
      redact: {
        paths: ['password', 'token', 'secret', '*.password', '*.token', '*.secret', 'headers.authorization'],
        censor: '***',
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
