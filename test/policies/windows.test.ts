/**
 * Change windows as a table of instants: each row names the windows, a time
 * (UTC, with the local time in the name where a time zone matters) and the
 * verdict. The tricky ones: DST in Europe/Berlin, a weekend deny window
 * (18:00 Friday + 64h), windows across midnight, allow-only windows,
 * overlapping deny and allow, a window that never ends, an override.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ChangeWindow,
  scheduleProblem,
  timezoneProblem,
  type WindowOverride,
  windowAt,
} from '../../policies/windows.js';

const H = 3_600_000;
const at = (iso: string): number => Date.parse(iso);
const win = (
  kind: ChangeWindow['kind'],
  schedule: string,
  hours: number,
  timezone = 'UTC',
): ChangeWindow => ({
  kind,
  schedule,
  durationMs: hours * H,
  timezone,
});

const WEEKEND = win('deny', '0 18 * * 5', 64, 'Europe/Berlin');
const OFFICE = win('allow', '0 9 * * 1-5', 8); // weekdays 09:00-17:00 UTC
const WED_LUNCH = win('deny', '0 12 * * 3', 1);

interface Row {
  name: string;
  windows: ChangeWindow[];
  now: string;
  open: boolean;
  /** ISO, or null: no end found. */
  until: string | null;
  reason?: RegExp;
  override?: WindowOverride;
}

const rows: Row[] = [
  { name: 'no windows: open, no end', windows: [], now: '2026-01-09T12:00:00Z', open: true, until: null },
  {
    name: 'weekend deny: Friday 17:59 Berlin is open until 18:00 Berlin',
    windows: [WEEKEND],
    now: '2026-01-09T16:59:00Z',
    open: true,
    until: '2026-01-09T17:00:00.000Z',
    reason: /outside every deny window/,
  },
  {
    name: 'weekend deny: Friday 18:00 Berlin sharp is closed until Monday 10:00 Berlin',
    windows: [WEEKEND],
    now: '2026-01-09T17:00:00Z',
    open: false,
    until: '2026-01-12T09:00:00.000Z',
    reason: /inside deny window "0 18 \* \* 5" \(Europe\/Berlin, 64h\)/,
  },
  {
    name: 'weekend deny: Sunday noon is closed',
    windows: [WEEKEND],
    now: '2026-01-11T11:00:00Z',
    open: false,
    until: '2026-01-12T09:00:00.000Z',
  },
  {
    name: 'weekend deny: Monday 10:00 Berlin is open again (a window is [start, end)), until next Friday',
    windows: [WEEKEND],
    now: '2026-01-12T09:00:00Z',
    open: true,
    until: '2026-01-16T17:00:00.000Z',
  },
  {
    name: 'DST (clocks forward on Sunday 29 March): 64h of elapsed time end on Monday 11:00 CEST',
    windows: [WEEKEND],
    now: '2026-03-30T08:30:00Z', // 10:30 CEST: still inside
    open: false,
    until: '2026-03-30T09:00:00.000Z',
  },
  {
    name: 'DST: Friday 18:00 CET before the change starts at 17:00 UTC',
    windows: [WEEKEND],
    now: '2026-03-27T17:00:00Z',
    open: false,
    until: '2026-03-30T09:00:00.000Z',
  },
  {
    name: 'DST: a start time the clock skips (02:30 on 29 March) still opens its window, at 03:00 CEST',
    windows: [win('deny', '30 2 * * *', 1, 'Europe/Berlin')],
    now: '2026-03-29T01:30:00Z', // 03:30 CEST
    open: false,
    until: '2026-03-29T02:00:00.000Z',
  },
  {
    name: 'DST: a start time the clock passes twice (02:30 on 25 October) starts once, at the first 02:30 (CEST)',
    windows: [win('deny', '30 2 * * *', 0.5, 'Europe/Berlin')],
    now: '2026-10-25T00:45:00Z', // 02:45 CEST
    open: false,
    until: '2026-10-25T01:00:00.000Z',
  },
  {
    name: 'DST: … and not again at the second 02:30 (CET)',
    windows: [win('deny', '30 2 * * *', 0.5, 'Europe/Berlin')],
    now: '2026-10-25T01:35:00Z', // 02:35 CET
    open: true,
    until: '2026-10-26T01:30:00.000Z',
  },
  {
    name: 'DST (clocks back on Sunday 25 October): a nightly window across midnight and the change',
    windows: [win('deny', '0 22 * * *', 6, 'Europe/Berlin')], // 22:00 CEST Saturday = 20:00 UTC
    now: '2026-10-25T01:30:00Z', // 02:30 CET (the second 02:30)
    open: false,
    until: '2026-10-25T02:00:00.000Z',
  },
  {
    name: 'a window across midnight: open just before it starts',
    windows: [win('deny', '0 23 * * *', 2)],
    now: '2026-01-05T22:59:59Z',
    open: true,
    until: '2026-01-05T23:00:00.000Z',
  },
  {
    name: 'a window across midnight: closed just after midnight',
    windows: [win('deny', '0 23 * * *', 2)],
    now: '2026-01-06T00:30:00Z',
    open: false,
    until: '2026-01-06T01:00:00.000Z',
  },
  {
    name: 'allow only: Tuesday 10:00 is open until 17:00',
    windows: [OFFICE],
    now: '2026-01-06T10:00:00Z',
    open: true,
    until: '2026-01-06T17:00:00.000Z',
    reason: /inside allow window/,
  },
  {
    name: 'allow only: Tuesday 18:00 is closed until Wednesday 09:00',
    windows: [OFFICE],
    now: '2026-01-06T18:00:00Z',
    open: false,
    until: '2026-01-07T09:00:00.000Z',
    reason: /outside every allow window/,
  },
  {
    name: 'allow only: Saturday is closed until Monday 09:00',
    windows: [OFFICE],
    now: '2026-01-10T12:00:00Z',
    open: false,
    until: '2026-01-12T09:00:00.000Z',
  },
  {
    name: 'deny inside allow: the deny wins (Wednesday 12:30)',
    windows: [OFFICE, WED_LUNCH],
    now: '2026-01-07T12:30:00Z',
    open: false,
    until: '2026-01-07T13:00:00.000Z',
    reason: /inside deny window "0 12 \* \* 3"/,
  },
  {
    name: 'deny inside allow: open before it, until it starts',
    windows: [OFFICE, WED_LUNCH],
    now: '2026-01-07T11:00:00Z',
    open: true,
    until: '2026-01-07T12:00:00.000Z',
  },
  {
    name: 'a deny at the end of an allow window: closed until the next allow window, not the deny end',
    windows: [OFFICE, win('deny', '0 16 * * *', 2)],
    now: '2026-01-06T16:30:00Z',
    open: false,
    until: '2026-01-07T09:00:00.000Z',
  },
  {
    name: 'overlapping occurrences of one window run together: 08:00, 10:00, 12:00 for 3h each → closed until 15:00',
    windows: [win('deny', '0 8,10,12 * * *', 3)],
    now: '2026-01-06T09:00:00Z',
    open: false,
    until: '2026-01-06T15:00:00.000Z',
  },
  {
    name: 'a deny window longer than its period never ends: closed, no end in sight',
    windows: [win('deny', '* * * * *', 1)],
    now: '2026-01-06T16:30:10Z',
    open: false,
    until: null,
  },
  {
    name: 'an override opens a closed window until its end',
    windows: [WEEKEND],
    now: '2026-01-10T12:00:00Z',
    override: {
      reason: 'hotfix 7',
      by: 'alice',
      since: at('2026-01-10T11:00:00Z'),
      until: at('2026-01-10T14:00:00Z'),
    },
    open: true,
    until: '2026-01-10T14:00:00.000Z',
    reason: /override by alice: hotfix 7/,
  },
  {
    name: 'an override past its end opens nothing',
    windows: [WEEKEND],
    now: '2026-01-10T14:00:00Z',
    override: {
      reason: 'hotfix 7',
      by: 'alice',
      since: at('2026-01-10T11:00:00Z'),
      until: at('2026-01-10T14:00:00Z'),
    },
    open: false,
    until: '2026-01-12T09:00:00.000Z',
  },
  {
    // The clock moved back an hour after a 1h override was given: it must not open the windows for 2h.
    name: 'an override opens nothing before its start (the clock moved backwards)',
    windows: [WEEKEND],
    now: '2026-01-10T10:00:00Z',
    override: {
      reason: 'hotfix 7',
      by: 'alice',
      since: at('2026-01-10T11:00:00Z'),
      until: at('2026-01-10T12:00:00Z'),
    },
    open: false,
    until: '2026-01-12T09:00:00.000Z',
  },
];

describe('windowAt', () => {
  for (const r of rows) {
    it(r.name, () => {
      const v = windowAt(r.windows, at(r.now), r.override ?? null);
      assert.equal(v.open, r.open, `open (${v.reason})`);
      assert.equal(v.until === null ? null : new Date(v.until).toISOString(), r.until, 'until');
      assert.equal(v.overridden, r.override !== undefined && r.open);
      if (r.reason) assert.match(v.reason, r.reason);
    });
  }
});

describe('schedule and time zone checks', () => {
  it('accepts five-field cron and nicknames, names what is wrong otherwise', () => {
    assert.equal(scheduleProblem('0 18 * * 5'), undefined);
    assert.equal(scheduleProblem('@weekly'), undefined);
    assert.match(scheduleProblem('61 18 * * 5') ?? '', /not a valid cron schedule: Invalid value for minute/);
    assert.match(scheduleProblem('0 0 18 * * 5') ?? '', /not a five-field cron schedule/);
    assert.match(scheduleProblem(' ') ?? '', /must not be empty/);
  });
  it('accepts IANA zones, rejects others', () => {
    assert.equal(timezoneProblem('Europe/Berlin'), undefined);
    assert.equal(timezoneProblem('UTC'), undefined);
    assert.match(timezoneProblem('Mars/Olympus') ?? '', /not an IANA time zone/);
  });
});
