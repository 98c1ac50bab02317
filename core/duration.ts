/**
 * Durations as written in steward.yaml: a number followed by a unit, e.g.
 * `500ms`, `30s`, `5m`, `1h`, or a compound of those from the largest unit to
 * the smallest, e.g. `1h30m` or `1m30s500ms`. A decimal amount is allowed
 * (`1.5h`) as long as the result is a whole number of milliseconds.
 *
 * A bare number is rejected on purpose: "30" could mean seconds to one reader
 * and milliseconds to another, so the error asks for the unit ("write 30s").
 * Internally every duration is a plain number of milliseconds.
 */

/** Milliseconds per unit, largest first: compound durations must follow this order. */
const UNITS: ReadonlyArray<readonly [unit: string, ms: number]> = [
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
];

const UNIT_LIST = 'ms, s, m or h';

/** The longest delay a Node timer honours (2^31−1 ms, about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** One `<amount><unit>` term: integer part, optional fraction, letters. */
const TERM = /(\d+)(?:\.(\d+))?([A-Za-zµ]*)/y;

/** Parses a duration such as `30s` or `1h30m` into milliseconds; throws an Error that says what to write. */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') return rejectNumber(input);
  if (typeof input !== 'string') throw new Error(`invalid duration: expected a string such as "30s"`);
  const text = input.trim();
  if (text === '') throw new Error('invalid duration "": empty (write e.g. 30s)');
  if (text.startsWith('-')) throw new Error(`invalid duration "${text}": must not be negative`);
  if (/\s/.test(text)) throw new Error(`invalid duration "${text}": write it without spaces (e.g. 1h30m)`);
  if (/^\d+(\.\d+)?$/.test(text))
    throw new Error(`invalid duration "${text}": a unit is required (write ${text}s, not ${text})`);
  return sumTerms(text);
}

/** Bare numbers are never accepted; the message depends on what the number was. */
function rejectNumber(n: number): never {
  if (Number.isNaN(n) || !Number.isFinite(n)) throw new Error(`invalid duration ${String(n)}: not a number`);
  if (n < 0) throw new Error(`invalid duration ${n}: must not be negative`);
  throw new Error(`invalid duration ${n}: a unit is required (write ${n}s, not ${n})`);
}

/** Adds up the terms of a (possibly compound) duration, checking unit names and their order. */
function sumTerms(text: string): number {
  let total = 0;
  let pos = 0;
  let lastRank = -1;
  while (pos < text.length) {
    TERM.lastIndex = pos;
    const m = TERM.exec(text);
    if (!m || m[0] === '')
      throw new Error(`invalid duration "${text}": expected a number and a unit (${UNIT_LIST})`);
    const [, whole = '', fraction, unit = ''] = m;
    const rank = UNITS.findIndex(([u]) => u === unit);
    if (unit === '') throw new Error(`invalid duration "${text}": "${whole}" needs a unit (${UNIT_LIST})`);
    if (rank < 0) throw new Error(`invalid duration "${text}": unknown unit "${unit}" (use ${UNIT_LIST})`);
    if (rank <= lastRank) {
      throw new Error(
        `invalid duration "${text}": units must go from largest to smallest, each once (e.g. 1h30m)`,
      );
    }
    total += termMs(text, whole, fraction, UNITS[rank]![1]);
    lastRank = rank;
    pos = TERM.lastIndex;
  }
  if (!Number.isSafeInteger(total)) throw new Error(`invalid duration "${text}": too large`);
  return total;
}

/** Milliseconds of one term, computed exactly (no floating-point surprises such as 0.7s → 700.0000001). */
function termMs(text: string, whole: string, fraction: string | undefined, unitMs: number): number {
  let ms = Number(whole) * unitMs;
  if (fraction !== undefined) {
    if (fraction.length > 9) throw new Error(`invalid duration "${text}": too many decimal places`);
    const scale = 10 ** fraction.length;
    const scaled = Number(fraction) * unitMs;
    if (scaled % scale !== 0) throw new Error(`invalid duration "${text}": finer than a millisecond`);
    ms += scaled / scale;
  }
  return ms;
}

/**
 * Formats milliseconds the way durations are written in the config, largest
 * unit first: 90000 → "1m30s", 500 → "500ms", 0 → "0s". Fractions of a
 * millisecond are rounded; negative values get a leading "-".
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`cannot format duration ${String(ms)}`);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  let rest = Math.round(ms);
  if (rest === 0) return '0s';
  let out = '';
  for (const [unit, size] of UNITS) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
