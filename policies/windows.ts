/**
 * Change windows (SPEC §12): when the agent may act, by the calendar.
 *
 * Protects against a revert landing at a moment people agreed nothing
 * changes (a weekend, a release evening). Each window starts at every firing
 * of its cron `schedule`, read in its IANA `timezone`, and lasts `durationMs`
 * of elapsed time (so across a DST change its end moves by the hour the
 * clock moved). A window is [start, start + duration).
 *
 * Closed: inside any `deny` window, or — when at least one `allow` window
 * exists — outside every `allow` window. A live operator override opens a
 * closed window until its end; it never lifts a freeze or observe mode (the
 * gate in decide comes first). Pure: the time is passed in.
 */
import { Cron } from 'croner';
import { formatDuration } from '../core/duration.js';

export type WindowKind = 'deny' | 'allow';

export interface ChangeWindow {
  readonly kind: WindowKind;
  /** Five-field cron (minute hour day-of-month month day-of-week) or a croner nickname such as `@weekly`. */
  readonly schedule: string;
  readonly durationMs: number;
  /** IANA time zone the schedule is read in. */
  readonly timezone: string;
}

/** An operator's override: the windows count as open until `until`. */
export interface WindowOverride {
  readonly reason: string;
  readonly by: string;
  readonly since: number;
  readonly until: number;
}

export interface WindowVerdict {
  open: boolean;
  /** One line a person can read: which window decided, or that an override is in force. */
  reason: string;
  /** When `open` next changes (ms); null with no windows, or when no change is found within the horizon. */
  until: number | null;
  /** An override opened windows that would be closed now. */
  overridden: boolean;
}

/** Window changes walked to find `until`; beyond them (or a year) `until` is null: "no end in sight". */
const MAX_STEPS = 100;
/** Overlapping occurrences followed before a window counts as never ending (e.g. every minute, for 1h). */
const MAX_RUN = 16;
const HORIZON_MS = 366 * 24 * 3_600_000;

interface Compiled {
  readonly w: ChangeWindow;
  readonly cron: Cron;
}

const compiledCache = new WeakMap<ChangeWindow, Compiled>();

function compile(w: ChangeWindow): Compiled {
  let c = compiledCache.get(w);
  if (!c) {
    c = { w, cron: new Cron(w.schedule, { timezone: w.timezone, paused: true }) };
    compiledCache.set(w, c);
  }
  return c;
}

/** The end of the window occurrence that contains `t`, or null when `t` is outside the window. */
function activeEnd(c: Compiled, t: number): number | null {
  const [start] = c.cron.previousRuns(1, new Date(t + 1)); // previousRuns is strictly before its reference
  if (!start) return null;
  const end = start.getTime() + c.w.durationMs;
  return t < end ? end : null;
}

/** The next start strictly after `t`, or null. */
function nextStart(c: Compiled, t: number): number | null {
  return c.cron.nextRun(new Date(t))?.getTime() ?? null;
}

function describe(w: ChangeWindow): string {
  return `${w.kind} window "${w.schedule}" (${w.timezone}, ${formatDuration(w.durationMs)})`;
}

/** Open or closed at `t` by the windows alone, and why. */
function windowsAt(cs: readonly Compiled[], t: number): { open: boolean; reason: string } {
  const deny = cs.find((c) => c.w.kind === 'deny' && activeEnd(c, t) !== null);
  if (deny) return { open: false, reason: `inside ${describe(deny.w)}` };
  const allows = cs.filter((c) => c.w.kind === 'allow');
  if (allows.length === 0) return { open: true, reason: 'outside every deny window' };
  const allow = allows.find((c) => activeEnd(c, t) !== null);
  return allow
    ? { open: true, reason: `inside ${describe(allow.w)}` }
    : { open: false, reason: 'outside every allow window' };
}

/**
 * The end of the run of occurrences that contains `t` (a start inside an occurrence extends it), null
 * when `t` is outside the window, +∞ when the run does not end within MAX_RUN occurrences.
 */
function runEnd(c: Compiled, t: number): number | null {
  let end = activeEnd(c, t);
  for (let i = 0; end !== null && i < MAX_RUN; i++) {
    const later = activeEnd(c, end);
    if (later === null) return end;
    end = later;
  }
  return end === null ? null : Number.POSITIVE_INFINITY;
}

/**
 * When the windows' verdict at `now` next changes, walking the windows' own changes (a window ends, or one
 * outside starts); null when none is found within MAX_STEPS of them or a year.
 */
function nextChange(cs: readonly Compiled[], now: number, open: boolean): number | null {
  let t = now;
  for (let step = 0; step < MAX_STEPS; step++) {
    let b = Number.POSITIVE_INFINITY;
    for (const c of cs) b = Math.min(b, runEnd(c, t) ?? nextStart(c, t) ?? b);
    if (!Number.isFinite(b) || b - now > HORIZON_MS) return null;
    if (windowsAt(cs, b).open !== open) return b;
    t = b;
  }
  return null;
}

/** Whether the agent may act at `now` by its change windows (and a live override). */
export function windowAt(
  windows: readonly ChangeWindow[],
  now: number,
  override: WindowOverride | null = null,
): WindowVerdict {
  if (windows.length === 0)
    return { open: true, reason: 'no change windows configured', until: null, overridden: false };
  const cs = windows.map(compile);
  const v = windowsAt(cs, now);
  // In force only within [since, until): a clock set back must not stretch it beyond what was granted.
  if (!v.open && override !== null && override.since <= now && now < override.until)
    return {
      open: true,
      reason: `override by ${override.by}: ${override.reason} (${v.reason})`,
      until: override.until,
      overridden: true,
    };
  return { ...v, until: nextChange(cs, now, v.open), overridden: false };
}

/** Why `schedule` is not a usable cron schedule, or undefined. */
export function scheduleProblem(schedule: string): string | undefined {
  const s = schedule.trim();
  if (s === '') return 'must not be empty';
  if (!s.startsWith('@') && s.split(/\s+/).length !== 5)
    return `"${s}" is not a five-field cron schedule (minute hour day-of-month month day-of-week, e.g. "0 18 * * 5")`;
  try {
    new Cron(s, { paused: true });
    return undefined;
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).replace(/^CronPattern: /, '');
    return `"${s}" is not a valid cron schedule: ${why} (e.g. "0 18 * * 5": 18:00 every Friday)`;
  }
}

/** Why `tz` is not an IANA time zone this runtime knows, or undefined. */
export function timezoneProblem(tz: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return undefined;
  } catch {
    return `"${tz}" is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)`;
  }
}
