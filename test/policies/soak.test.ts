import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type SoakState, soakStep } from '../../policies/soak.js';

/** Runs one soak step per sha, from no state, and returns whether each cycle soaked. */
function run(observeCycles: number, shas: readonly string[]): boolean[] {
  let state: SoakState | null = null;
  return shas.map((sha) => {
    const step = soakStep(state, sha, observeCycles);
    state = step.state;
    return step.soaking;
  });
}

const cases: Array<{ name: string; observeCycles: number; shas: string[]; soaking: boolean[] }> = [
  { name: '0 cycles: act at once', observeCycles: 0, shas: ['a', 'a'], soaking: [false, false] },
  {
    name: '1 cycle: first observe-only, second acts',
    observeCycles: 1,
    shas: ['a', 'a', 'a'],
    soaking: [true, false, false],
  },
  { name: '2 cycles', observeCycles: 2, shas: ['a', 'a', 'a', 'a'], soaking: [true, true, false, false] },
  {
    name: 'new revision after soaking restarts the soak',
    observeCycles: 1,
    shas: ['a', 'a', 'b', 'b'],
    soaking: [true, false, true, false],
  },
  {
    name: 'revision change mid-soak restarts it',
    observeCycles: 2,
    shas: ['a', 'b', 'b', 'b'],
    soaking: [true, true, true, false],
  },
  {
    name: 'going back to an older revision soaks again',
    observeCycles: 1,
    shas: ['a', 'a', 'b', 'a', 'a'],
    soaking: [true, false, true, true, false],
  },
  {
    name: '0 cycles with revision changes never soaks',
    observeCycles: 0,
    shas: ['a', 'b', 'c'],
    soaking: [false, false, false],
  },
];

for (const c of cases) {
  test(`soakStep: ${c.name}`, () => {
    assert.deepEqual(run(c.observeCycles, c.shas), c.soaking);
  });
}

test('soakStep: counts cycles per sha and does not mutate its input', () => {
  const state: SoakState = Object.freeze({ sha: 'a', cyclesObserved: 1 });
  assert.deepEqual(soakStep(state, 'a', 1), { state: { sha: 'a', cyclesObserved: 2 }, soaking: false });
  assert.deepEqual(soakStep(state, 'b', 1), { state: { sha: 'b', cyclesObserved: 1 }, soaking: true });
  assert.deepEqual(state, { sha: 'a', cyclesObserved: 1 });
  assert.deepEqual(soakStep(null, 'a', 1), { state: { sha: 'a', cyclesObserved: 1 }, soaking: true });
});

test('soakStep: once the soak is over the count stops: the same state comes back (a steady cycle persists nothing)', () => {
  let state: SoakState | null = null;
  const seen: number[] = [];
  for (let i = 0; i < 6; i++) {
    const step = soakStep(state, 'a', 2);
    seen.push(step.state.cyclesObserved);
    if (i >= 4) assert.equal(step.state, state, 'the very same object');
    state = step.state;
  }
  assert.deepEqual(seen, [1, 2, 3, 3, 3, 3]);
  assert.equal(soakStep(state, 'a', 2).soaking, false);
  assert.equal(soakStep(state, 'a', 5).soaking, true, 'a longer soak configured later still soaks');
});
