import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, inBackoff, seededRandom } from '../../policies/backoff.js';
import { record } from './fixtures.js';

const noJitter = { baseMs: 1000, factor: 2, maxMs: 10_000, jitter: 0 };
const middle = () => 0.5;

const delays: Array<{ attempts: number; expected: number }> = [
  { attempts: -1, expected: 0 },
  { attempts: 0, expected: 0 },
  { attempts: 1, expected: 1000 },
  { attempts: 2, expected: 2000 },
  { attempts: 4, expected: 8000 },
  { attempts: 5, expected: 10_000 },
  { attempts: 2000, expected: 10_000 }, // factor^1999 overflows to Infinity: still the cap
];

for (const c of delays) {
  test(`backoffDelay: attempts ${c.attempts} → ${c.expected} ms`, () => {
    assert.equal(backoffDelay(c.attempts, noJitter, middle), c.expected);
  });
}

const jittered = { baseMs: 1000, factor: 2, maxMs: 10_000, jitter: 0.2 };

const jitterCases: Array<{ name: string; attempts: number; random: number; expected: number }> = [
  { name: 'random 0 → −jitter', attempts: 2, random: 0, expected: 1600 },
  { name: 'random 0.5 → no change', attempts: 2, random: 0.5, expected: 2000 },
  { name: 'random 0.75 → +jitter/2', attempts: 2, random: 0.75, expected: 2200 },
  { name: 'at the cap, +jitter is cut to the cap', attempts: 6, random: 0.99, expected: 10_000 },
  { name: 'at the cap, −jitter still applies', attempts: 6, random: 0, expected: 8000 },
];

for (const c of jitterCases) {
  test(`backoffDelay jitter: ${c.name}`, () => {
    assert.equal(
      backoffDelay(c.attempts, jittered, () => c.random),
      c.expected,
    );
  });
}

test('backoffDelay: jitter stays within bounds and is really spread, over many seeded samples', () => {
  const random = seededRandom(42);
  for (let attempts = 1; attempts <= 8; attempts++) {
    const raw = Math.min(jittered.maxMs, jittered.baseMs * jittered.factor ** (attempts - 1));
    const lo = Math.round(raw * (1 - jittered.jitter));
    const hi = Math.min(jittered.maxMs, Math.round(raw * (1 + jittered.jitter)));
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < 5000; i++) {
      const d = backoffDelay(attempts, jittered, random);
      assert.ok(Number.isInteger(d), `integer ms, got ${d}`);
      assert.ok(d >= lo && d <= hi, `attempts ${attempts}: ${d} not in [${lo}, ${hi}]`);
      min = Math.min(min, d);
      max = Math.max(max, d);
    }
    // the samples cover most of the range: jitter is not silently off
    assert.ok(min < raw * (1 - jittered.jitter * 0.9), `attempts ${attempts}: min ${min} too high`);
    assert.ok(
      max >= Math.min(hi, raw * (1 + jittered.jitter * 0.9)),
      `attempts ${attempts}: max ${max} too low`,
    );
  }
});

test('backoffDelay: a jitter above 1 never gives a negative delay', () => {
  const random = seededRandom(7);
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(3, { ...jittered, jitter: 1.5 }, random);
    assert.ok(d >= 0 && d <= jittered.maxMs, String(d));
  }
});

test('backoffDelay: base 0 is no backoff, even for huge attempts', () => {
  assert.equal(backoffDelay(5000, { ...jittered, baseMs: 0 }, middle), 0);
});

test('seededRandom: deterministic per seed, in [0, 1)', () => {
  const a = seededRandom(1);
  const b = seededRandom(1);
  const c = seededRandom(2);
  const seqA = Array.from({ length: 100 }, a);
  assert.deepEqual(seqA, Array.from({ length: 100 }, b));
  assert.notDeepEqual(seqA, Array.from({ length: 100 }, c));
  for (const x of seqA) assert.ok(x >= 0 && x < 1);
  assert.ok(new Set(seqA).size > 95);
});

const backoffCases: Array<{ name: string; nextAttemptAt?: number; now: number; expected: boolean }> = [
  { name: 'never backed off', now: 1000, expected: false },
  { name: 'before the time', nextAttemptAt: 2000, now: 1999, expected: true },
  { name: 'exactly at the time', nextAttemptAt: 2000, now: 2000, expected: false },
  { name: 'after the time', nextAttemptAt: 2000, now: 2001, expected: false },
];

for (const c of backoffCases) {
  test(`inBackoff: ${c.name}`, () => {
    const r = c.nextAttemptAt === undefined ? record() : record({ nextAttemptAt: c.nextAttemptAt });
    assert.equal(inBackoff(r, c.now), c.expected);
  });
}
