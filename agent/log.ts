/**
 * Logs on stderr (pino), so command output on stdout stays clean: JSON lines
 * for machines, or one readable line per record on a terminal (`pretty`:
 * time, level, message, `key=value` fields). The pretty form is made from
 * the JSON pino wrote, after redaction, so it can never show more than the
 * JSON would.
 */
import { pino } from 'pino';
import { escapeControls } from '../core/text.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type Logger = pino.Logger;
export type LogFormat = 'auto' | 'pretty' | 'json';

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

export interface LoggerOptions {
  /** `auto` (the default): `pretty` when stderr is a terminal, else `json`. */
  format?: LogFormat;
  /** Colour in the pretty format (default: stderr is a terminal and NO_COLOR is unset). */
  colour?: boolean;
}

/** A logger writing to `destination` (default: stderr, synchronously): JSON lines, or pretty ones. */
export function createLogger(
  level: LogLevel = 'info',
  destination?: pino.DestinationStream,
  opts: LoggerOptions = {},
): Logger {
  const out = destination ?? pino.destination({ fd: 2, sync: true });
  const tty = destination === undefined && process.stderr.isTTY === true;
  const format =
    opts.format === undefined || opts.format === 'auto' ? (tty ? 'pretty' : 'json') : opts.format;
  const colour = opts.colour ?? (tty && !process.env['NO_COLOR']);
  return pino(
    {
      level,
      base: { name: 'steward' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '***' },
      formatters: { level: (label) => ({ level: label }) },
    },
    format === 'pretty' ? prettyStream(out, colour) : out,
  );
}

/** A stream that turns each JSON line pino writes into its pretty line. */
function prettyStream(out: pino.DestinationStream, colour: boolean): pino.DestinationStream {
  return {
    write(line: string) {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      out.write(`${prettyLine(record, colour)}\n`);
    },
  };
}

const COLOURS: Record<string, string> = {
  fatal: '\x1b[41;97m',
  error: '\x1b[31m',
  warn: '\x1b[33m',
  info: '\x1b[32m',
  debug: '\x1b[90m',
  trace: '\x1b[90m',
};
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';
/** Fields every record has, shown in their own place (or not at all). */
const PLACED = new Set(['time', 'level', 'msg', 'name', 'pid', 'hostname']);

/** A value as it reads after `key=`: bare when it is one plain word, else JSON (quoted, escaped). */
function fieldValue(v: unknown): string {
  if (typeof v === 'string')
    return /^[^\s"=\\]+$/.test(v) && escapeControls(v) === v ? v : escapeControls(JSON.stringify(v));
  if (typeof v === 'object' && v !== null) return escapeControls(JSON.stringify(v));
  return String(v);
}

/** `key=value` pairs, nested objects flattened to dotted keys (`event.type=frozen`); arrays stay JSON. */
function flatten(prefix: string, v: unknown, out: string[]): void {
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length > 0) {
    for (const [k, x] of Object.entries(v)) flatten(prefix ? `${prefix}.${k}` : k, x, out);
    return;
  }
  out.push(`${escapeControls(prefix)}=${fieldValue(v)}`);
}

/**
 * One record as one line: `2026-12-02 00:12:34.567Z WARN  message key=value …`. Pure (tests call it);
 * the record is what pino wrote, redaction already applied. Line breaks in values are escaped.
 */
export function prettyLine(record: Readonly<Record<string, unknown>>, colour = false): string {
  const time = typeof record['time'] === 'string' ? record['time'].replace('T', ' ') : '';
  const level = typeof record['level'] === 'string' ? record['level'] : String(record['level'] ?? '');
  const label = level.toUpperCase().padEnd(5);
  const msg = escapeControls(String(record['msg'] ?? '').replace(/\r?\n/g, '\\n'));
  const fields: string[] = [];
  for (const [k, v] of Object.entries(record)) if (!PLACED.has(k)) flatten(k, v, fields);
  const rest = fields.join(' ');
  if (!colour) return [time, label, msg, rest].filter(Boolean).join(' ');
  const c = COLOURS[level] ?? '';
  return [`${DIM}${time}${RESET}`, `${c}${label}${RESET}`, msg, rest ? `${DIM}${rest}${RESET}` : '']
    .filter(Boolean)
    .join(' ');
}

export const silentLogger: Logger = pino({ level: 'silent' });
