import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_TIMER_MS, formatDuration, parseDuration } from '../../core/duration.js';

describe('parseDuration', () => {
  const valid: Array<[string, number]> = [
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['0s', 0],
    ['0ms', 0],
    ['1h30m', 5_400_000],
    ['1m30s500ms', 90_500],
    ['2h0m5s', 7_205_000],
    ['1.5h', 5_400_000],
    ['0.5s', 500],
    ['0.7s', 700],
    ['1.25m', 75_000],
    ['  45s  ', 45_000],
    ['720h', 2_592_000_000],
  ];
  for (const [input, ms] of valid) {
    it(`parses ${JSON.stringify(input)} as ${ms} ms`, () => {
      assert.equal(parseDuration(input), ms);
    });
  }

  const invalid: Array<[string | number, RegExp]> = [
    ['', /empty/],
    ['   ', /empty/],
    ['30', /write 30s, not 30/],
    [30, /write 30s, not 30/],
    [0, /a unit is required/],
    ['1.5', /write 1.5s, not 1.5/],
    [-5, /must not be negative/],
    ['-5s', /must not be negative/],
    [Number.NaN, /not a number/],
    [Number.POSITIVE_INFINITY, /not a number/],
    ['5x', /unknown unit "x" \(use ms, s, m or h\)/],
    ['5d', /unknown unit "d"/],
    ['5S', /unknown unit "S"/],
    ['5µs', /unknown unit "µs"/],
    ['30m1h', /largest to smallest/],
    ['1m1m', /largest to smallest/],
    ['1h30', /"30" needs a unit/],
    ['s', /expected a number and a unit/],
    ['5 m', /without spaces/],
    ['+5s', /expected a number and a unit/],
    ['abc', /expected a number and a unit/],
    ['0.5ms', /finer than a millisecond/],
    ['1.0000000001s', /too many decimal places/],
    ['9999999999999999h', /too large/],
  ];
  for (const [input, pattern] of invalid) {
    it(`rejects ${JSON.stringify(input) ?? String(input)}`, () => {
      assert.throws(() => parseDuration(input), pattern);
    });
  }

  it('throws plain Errors whose message quotes the input', () => {
    assert.throws(
      () => parseDuration('5x'),
      (e: unknown) => e instanceof Error && e.message.startsWith('invalid duration "5x"'),
    );
  });
});

describe('formatDuration', () => {
  const cases: Array<[number, string]> = [
    [0, '0s'],
    [500, '500ms'],
    [1_000, '1s'],
    [1_500, '1s500ms'],
    [90_000, '1m30s'],
    [3_600_000, '1h'],
    [5_400_000, '1h30m'],
    [1_800_000, '30m'],
    [90_061_001, '25h1m1s1ms'],
    [499.6, '500ms'],
    [-90_000, '-1m30s'],
  ];
  for (const [ms, text] of cases) {
    it(`formats ${ms} as ${text}`, () => {
      assert.equal(formatDuration(ms), text);
    });
  }

  it('rejects non-finite input', () => {
    assert.throws(() => formatDuration(Number.NaN), RangeError);
    assert.throws(() => formatDuration(Number.POSITIVE_INFINITY), RangeError);
  });

  it('round-trips through parseDuration', () => {
    for (const ms of [0, 1, 999, 1_000, 59_999, 60_000, 3_599_999, 3_600_000, 86_400_000, MAX_TIMER_MS]) {
      assert.equal(parseDuration(formatDuration(ms)), ms);
    }
  });
});
