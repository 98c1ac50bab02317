import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, inBackoff, seededRandom } from '../../policies/backoff.js';
import {
  type ConvergenceEvent,
  emptyRecord,
  markDrifted,
  trackConvergence,
} from '../../policies/non-convergence.js';
import type { ResourceRecord } from '../../policies/types.js';
import { deepFreeze, record } from './fixtures.js';

/** No jitter, so nextAttemptAt is exact: 1 s, 2 s, 4 s… capped at 60 s. */
const config = { alertAfterCycles: 3, backoff: { baseMs: 1000, factor: 2, maxMs: 60_000, jitter: 0 } };
const random = seededRandom(1);
const NOW = 1_000_000;

const ev = (kind: ConvergenceEvent['kind']): ConvergenceEvent => ({ kind });

const single: Array<{
  name: string;
  before: ResourceRecord;
  event: ConvergenceEvent['kind'];
  after: ResourceRecord;
  transition: 'stuck' | 'recovered' | null;
}> = [
  {
    name: 'converged resets attempts, backoff, counters and firstSeen, keeps lastApplied',
    before: record({
      attempts: 2,
      nextAttemptAt: NOW + 5,
      cyclesActedDrifted: 2,
      firstSeen: 5,
      lastApplied: { a: 1 },
    }),
    event: 'converged',
    after: record({ lastApplied: { a: 1 } }),
    transition: null,
  },
  {
    name: 'converged while stuck: recovered',
    before: record({ attempts: 5, cyclesActedDrifted: 5, firstSeen: 5, stuck: true, nextAttemptAt: NOW + 9 }),
    event: 'converged',
    after: record(),
    transition: 'recovered',
  },
  {
    name: 'acted-failed counts an attempt and schedules backoff',
    before: record({ firstSeen: 5 }),
    event: 'acted-failed',
    after: record({ firstSeen: 5, attempts: 1, cyclesActedDrifted: 1, nextAttemptAt: NOW + 1000 }),
    transition: null,
  },
  {
    name: 'still-drifted-after-act counts like a failure',
    before: record({ firstSeen: 5, attempts: 1, cyclesActedDrifted: 1, nextAttemptAt: NOW - 10 }),
    event: 'still-drifted-after-act',
    after: record({ firstSeen: 5, attempts: 2, cyclesActedDrifted: 2, nextAttemptAt: NOW + 2000 }),
    transition: null,
  },
  {
    name: 'reaching alertAfterCycles: stuck',
    before: record({ firstSeen: 5, attempts: 2, cyclesActedDrifted: 2 }),
    event: 'acted-failed',
    after: record({
      firstSeen: 5,
      attempts: 3,
      cyclesActedDrifted: 3,
      nextAttemptAt: NOW + 4000,
      stuck: true,
    }),
    transition: 'stuck',
  },
  {
    name: 'already stuck: no second stuck transition',
    before: record({ firstSeen: 5, attempts: 3, cyclesActedDrifted: 3, stuck: true }),
    event: 'still-drifted-after-act',
    after: record({
      firstSeen: 5,
      attempts: 4,
      cyclesActedDrifted: 4,
      nextAttemptAt: NOW + 8000,
      stuck: true,
    }),
    transition: null,
  },
  {
    name: 'acted-ok changes no counter until the next observation',
    before: record({ firstSeen: 5, attempts: 2, cyclesActedDrifted: 2, nextAttemptAt: NOW - 1 }),
    event: 'acted-ok',
    after: record({ firstSeen: 5, attempts: 2, cyclesActedDrifted: 2, nextAttemptAt: NOW - 1 }),
    transition: null,
  },
  {
    name: 'drifted-not-acted changes no counter',
    before: record({ firstSeen: 5, attempts: 1, cyclesActedDrifted: 1, nextAttemptAt: NOW + 5 }),
    event: 'drifted-not-acted',
    after: record({ firstSeen: 5, attempts: 1, cyclesActedDrifted: 1, nextAttemptAt: NOW + 5 }),
    transition: null,
  },
  {
    name: 'drifted-not-acted sets firstSeen when unset',
    before: record(),
    event: 'drifted-not-acted',
    after: record({ firstSeen: NOW }),
    transition: null,
  },
];

for (const c of single) {
  test(`trackConvergence: ${c.name}`, () => {
    const before = deepFreeze(c.before);
    const out = trackConvergence(before, ev(c.event), config, NOW, random);
    assert.deepEqual(out, { record: c.after, transition: c.transition });
  });
}

/** Runs events one per cycle (10 s apart) and returns the transitions. */
function run(events: ConvergenceEvent['kind'][], start: ResourceRecord = emptyRecord()) {
  let r = start;
  const transitions: Array<'stuck' | 'recovered' | null> = [];
  events.forEach((kind, i) => {
    const out = trackConvergence(r, ev(kind), config, NOW + i * 10_000, random);
    r = out.record;
    transitions.push(out.transition);
  });
  return { record: r, transitions };
}

test('stuck once, then silence, then recovered once, then silence', () => {
  const { transitions, record: r } = run([
    'acted-failed',
    'acted-failed',
    'acted-failed',
    'acted-failed',
    'drifted-not-acted',
    'acted-failed',
    'converged',
    'converged',
  ]);
  assert.deepEqual(transitions, [null, null, 'stuck', null, null, null, 'recovered', null]);
  assert.equal(r.stuck, false);
});

test('a new episode after recovery alerts again', () => {
  const { transitions } = run([
    'acted-failed',
    'acted-failed',
    'acted-failed',
    'converged',
    'acted-failed',
    'acted-failed',
    'acted-failed',
  ]);
  assert.deepEqual(transitions, [null, null, 'stuck', 'recovered', null, null, 'stuck']);
});

test('an apply that "succeeds" but does not stick counts towards backoff and non-convergence', () => {
  const { record: r, transitions } = run([
    'acted-ok',
    'still-drifted-after-act',
    'acted-ok',
    'still-drifted-after-act',
    'acted-ok',
    'still-drifted-after-act',
  ]);
  assert.deepEqual(transitions, [null, null, null, null, null, 'stuck']);
  assert.equal(r.attempts, 3);
  assert.equal(r.cyclesActedDrifted, 3);
  assert.equal(r.nextAttemptAt, NOW + 5 * 10_000 + 4000);
  assert.ok(inBackoff(r, NOW + 5 * 10_000 + 3999));
});

test('backoff resets after success: the next failure waits the base delay again', () => {
  const { record: afterFailures } = run(['acted-failed', 'acted-failed', 'acted-failed', 'acted-failed']);
  assert.equal(afterFailures.attempts, 4);
  const { record: converged } = run(['acted-ok', 'converged'], afterFailures);
  assert.equal(converged.attempts, 0);
  assert.equal(converged.nextAttemptAt, undefined);
  assert.equal(inBackoff(converged, 0), false);
  const again = trackConvergence(converged, ev('acted-failed'), config, NOW, random);
  assert.equal(again.record.attempts, 1);
  assert.equal(again.record.nextAttemptAt, NOW + backoffDelay(1, config.backoff, random));
  assert.equal(again.record.nextAttemptAt, NOW + 1000);
});

test('held cycles do not break or advance the count', () => {
  const { transitions } = run([
    'acted-failed',
    'drifted-not-acted',
    'drifted-not-acted',
    'acted-failed',
    'drifted-not-acted',
    'acted-failed',
  ]);
  assert.deepEqual(transitions, [null, null, null, null, null, 'stuck']);
});

test('backoff grows with attempts and is capped', () => {
  const { record: r } = run(Array.from({ length: 12 }, () => 'acted-failed' as const));
  assert.equal(r.attempts, 12);
  assert.equal(r.nextAttemptAt, NOW + 11 * 10_000 + 60_000);
});

test('markDrifted: sets firstSeen once, never moves it, never mutates', () => {
  const fresh = deepFreeze(emptyRecord());
  const first = markDrifted(fresh, 100);
  assert.equal(first.firstSeen, 100);
  assert.equal(fresh.firstSeen, undefined);
  assert.equal(markDrifted(first, 200).firstSeen, 100);
  assert.notEqual(markDrifted(first, 200), first);
});

test('acting events keep the original firstSeen', () => {
  const { record: r } = run(['drifted-not-acted', 'acted-failed', 'acted-ok', 'still-drifted-after-act']);
  assert.equal(r.firstSeen, NOW);
});
