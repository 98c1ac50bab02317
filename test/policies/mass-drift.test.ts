import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkMassDrift, formatPercent } from '../../policies/mass-drift.js';

const config = { maxDrifted: 50, maxDriftedPercent: 30, minManaged: 5 };

const cases: Array<{
  name: string;
  wouldChange: number;
  managed: number;
  config?: typeof config;
  reason: string | null;
}> = [
  { name: 'nothing managed, nothing changes', wouldChange: 0, managed: 0, reason: null },
  { name: 'exactly at the percent limit does not trip', wouldChange: 3, managed: 10, reason: null },
  {
    name: 'one above the percent limit trips',
    wouldChange: 4,
    managed: 10,
    reason: '4 of 10 managed resources (40%) would change; limit 30%',
  },
  {
    name: 'the example of the brief',
    wouldChange: 6,
    managed: 10,
    reason: '6 of 10 managed resources (60%) would change; limit 30%',
  },
  { name: 'minManaged not reached: percent ignored', wouldChange: 4, managed: 4, reason: null },
  {
    name: 'minManaged reached exactly: percent applies',
    wouldChange: 4,
    managed: 5,
    reason: '4 of 5 managed resources (80%) would change; limit 30%',
  },
  { name: 'exactly at the count limit does not trip', wouldChange: 50, managed: 1000, reason: null },
  {
    name: 'one above the count limit trips',
    wouldChange: 51,
    managed: 1000,
    reason: '51 of 1000 managed resources would change; limit 50',
  },
  {
    name: 'count limit applies below minManaged',
    wouldChange: 3,
    managed: 4,
    config: { maxDrifted: 2, maxDriftedPercent: 100, minManaged: 5 },
    reason: '3 of 4 managed resources would change; limit 2',
  },
  {
    name: 'count at its limit below minManaged does not trip',
    wouldChange: 2,
    managed: 4,
    config: { maxDrifted: 2, maxDriftedPercent: 0, minManaged: 5 },
    reason: null,
  },
  {
    name: 'integer-safe edge: 7 of 100 at 7% (7/100*100 is 7.000000000000001 in floats)',
    wouldChange: 7,
    managed: 100,
    config: { maxDrifted: 1000, maxDriftedPercent: 7, minManaged: 5 },
    reason: null,
  },
  {
    name: 'integer-safe edge: 57 of 100 at 57%',
    wouldChange: 57,
    managed: 100,
    config: { maxDrifted: 1000, maxDriftedPercent: 57, minManaged: 5 },
    reason: null,
  },
  {
    name: 'a value just above the limit never prints as the limit',
    wouldChange: 3001,
    managed: 10000,
    config: { maxDrifted: 100000, maxDriftedPercent: 30, minManaged: 5 },
    reason: '3001 of 10000 managed resources (30.01%) would change; limit 30%',
  },
  {
    name: 'zero percent limit: no change is fine',
    wouldChange: 0,
    managed: 10,
    config: { ...config, maxDriftedPercent: 0 },
    reason: null,
  },
  {
    name: 'zero percent limit: one change trips',
    wouldChange: 1,
    managed: 10,
    config: { ...config, maxDriftedPercent: 0 },
    reason: '1 of 10 managed resources (10%) would change; limit 0%',
  },
];

for (const c of cases) {
  test(`checkMassDrift: ${c.name}`, () => {
    const verdict = checkMassDrift({
      wouldChange: c.wouldChange,
      managed: c.managed,
      config: c.config ?? config,
    });
    assert.deepEqual(verdict, c.reason === null ? { trip: false } : { trip: true, reason: c.reason });
  });
}

test('checkMassDrift: the comparison is exact over a grid around the percent edge', () => {
  for (let managed = 5; managed <= 300; managed++) {
    for (let percent = 1; percent <= 99; percent += 7) {
      // the largest count that is still within the limit, computed in integers
      const atLimit = Math.floor((percent * managed) / 100);
      const cfg = { maxDrifted: 10_000, maxDriftedPercent: percent, minManaged: 5 };
      assert.equal(
        checkMassDrift({ wouldChange: atLimit, managed, config: cfg }).trip,
        false,
        `${atLimit}/${managed} @${percent}`,
      );
      assert.equal(
        checkMassDrift({ wouldChange: atLimit + 1, managed, config: cfg }).trip,
        true,
        `${atLimit + 1}/${managed} @${percent}`,
      );
    }
  }
});

test('formatPercent: as few decimals as needed', () => {
  assert.equal(formatPercent(1, 3, 30), '33');
  assert.equal(formatPercent(301, 1000, 30), '30.1');
  assert.equal(formatPercent(30001, 100000, 30), '30.001');
  assert.equal(formatPercent(1, 2, 30), '50');
});
