import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gate } from '../../policies/gate.js';
import type { Freeze, Mode } from '../../policies/types.js';

const frozen: Freeze = { reason: 'maintenance', by: 'admin', since: 1 };

const cases: Array<{ mode: Mode; freeze: Freeze | null; expected: ReturnType<typeof gate> }> = [
  { mode: 'enforce', freeze: null, expected: { act: true } },
  { mode: 'observe', freeze: null, expected: { act: false, reason: 'observe' } },
  { mode: 'enforce', freeze: frozen, expected: { act: false, reason: 'frozen' } },
  { mode: 'observe', freeze: frozen, expected: { act: false, reason: 'frozen' } },
];

for (const c of cases) {
  test(`gate: mode ${c.mode}, ${c.freeze ? 'frozen' : 'not frozen'}`, () => {
    assert.deepEqual(gate({ mode: c.mode, freeze: c.freeze }), c.expected);
  });
}
