import assert from 'node:assert/strict';
import { test } from 'node:test';
import { refill, take } from '../../policies/rate-limit.js';
import type { TokenBucket } from '../../policies/types.js';

/** One token per second, ten at most. */
const config = { actionsPerMinute: 60, burst: 10 };

const refills: Array<{ name: string; bucket: TokenBucket | null; now: number; expected: TokenBucket }> = [
  { name: 'no bucket yet: starts full', bucket: null, now: 5000, expected: { tokens: 10, updatedAt: 5000 } },
  {
    name: 'half a second: half a token',
    bucket: { tokens: 0, updatedAt: 0 },
    now: 500,
    expected: { tokens: 0.5, updatedAt: 500 },
  },
  {
    name: '2.5 s',
    bucket: { tokens: 1, updatedAt: 1000 },
    now: 3500,
    expected: { tokens: 3.5, updatedAt: 3500 },
  },
  {
    name: 'capped at burst',
    bucket: { tokens: 9, updatedAt: 0 },
    now: 3_600_000,
    expected: { tokens: 10, updatedAt: 3_600_000 },
  },
  {
    name: 'no time passed',
    bucket: { tokens: 2, updatedAt: 100 },
    now: 100,
    expected: { tokens: 2, updatedAt: 100 },
  },
  {
    name: 'clock went backwards: nothing added, re-anchored',
    bucket: { tokens: 3, updatedAt: 10_000 },
    now: 5000,
    expected: { tokens: 3, updatedAt: 5000 },
  },
  {
    name: 'burst lowered in config: cut down',
    bucket: { tokens: 10, updatedAt: 0 },
    now: 0,
    expected: { tokens: 5, updatedAt: 0 },
  },
];

for (const c of refills) {
  test(`refill: ${c.name}`, () => {
    const cfg = c.name.startsWith('burst lowered') ? { ...config, burst: 5 } : config;
    assert.deepEqual(
      refill(c.bucket === null ? null : Object.freeze({ ...c.bucket }), c.now, cfg),
      c.expected,
    );
  });
}

test('refill: after a backwards clock, only time that really passes is credited', () => {
  const back = refill({ tokens: 3, updatedAt: 10_000 }, 5000, config);
  assert.deepEqual(refill(back, 6000, config), { tokens: 4, updatedAt: 6000 });
});

const takes: Array<{ name: string; tokens: number; n: number; granted: number; left: number }> = [
  { name: 'enough tokens', tokens: 10, n: 3, granted: 3, left: 7 },
  { name: 'fractional remainder kept', tokens: 2.5, n: 3, granted: 2, left: 0.5 },
  { name: 'less than one token grants nothing', tokens: 0.99, n: 1, granted: 0, left: 0.99 },
  { name: 'asking for none', tokens: 4, n: 0, granted: 0, left: 4 },
  { name: 'a negative ask grants none', tokens: 4, n: -2, granted: 0, left: 4 },
  { name: 'empty bucket', tokens: 0, n: 5, granted: 0, left: 0 },
];

for (const c of takes) {
  test(`take: ${c.name}`, () => {
    const bucket = Object.freeze({ tokens: c.tokens, updatedAt: 77 });
    assert.deepEqual(take(bucket, c.n), { granted: c.granted, bucket: { tokens: c.left, updatedAt: 77 } });
    assert.equal(bucket.tokens, c.tokens);
  });
}

test('refill + take over time: burst first, then the steady rate', () => {
  let bucket = refill(null, 0, config);
  let first = take(bucket, 100);
  assert.equal(first.granted, 10);
  bucket = first.bucket;
  let total = 0;
  for (let second = 1; second <= 60; second++) {
    first = take(refill(bucket, second * 1000, config), 100);
    assert.equal(first.granted, 1, `second ${second}`);
    total += first.granted;
    bucket = first.bucket;
  }
  assert.equal(total, 60);
});

test('refill in 100 ms steps: float accumulation does not lose a token', () => {
  // 10 × 0.1 sums to 0.9999999999999999 in floats
  let bucket: TokenBucket = { tokens: 0, updatedAt: 0 };
  for (let t = 100; t <= 1000; t += 100) bucket = refill(bucket, t, config);
  assert.equal(take(bucket, 1).granted, 1);
  assert.ok(take(bucket, 1).bucket.tokens >= 0);
});
