import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../policies/backoff.js';
import { foldObservation } from '../../policies/fold.js';
import type { ResourceRecord } from '../../policies/types.js';

const config = { alertAfterCycles: 3, backoff: { baseMs: 1000, factor: 2, maxMs: 60_000, jitter: 0 } };
const desired = { spec: { content: 'a' } };
const clean = (): ResourceRecord => ({
  lastApplied: { spec: { content: 'a' } },
  attempts: 0,
  cyclesActedDrifted: 0,
  stuck: false,
});

const input = (records: Map<string, ResourceRecord>, handOver?: boolean) => ({
  converged: [{ key: 'File/a', desired }],
  drifted: [{ key: 'File/b', desired, settleMs: 0 }],
  records,
  ...(handOver === undefined ? {} : { handOver }),
  now: 1_000_000,
  config,
  random: seededRandom(1),
});

test('a handed-over records map is updated in place: no second map of every record', () => {
  const records = new Map([
    ['File/a', clean()],
    ['File/b', clean()],
  ]);
  const out = foldObservation(input(records, true));
  assert.equal(out.records, records);
  // A converged record's base is the desired document itself (shared, not a copy).
  assert.equal(out.records.get('File/a')!.lastApplied, desired);
  assert.equal(out.records.get('File/b')!.firstSeen, 1_000_000);
});

test('without hand-over the caller’s map is left as it was (pure)', () => {
  const a = clean();
  const b = clean();
  const records = new Map([
    ['File/a', a],
    ['File/b', b],
  ]);
  const out = foldObservation(input(records));
  assert.notEqual(out.records, records);
  assert.equal(records.get('File/a'), a);
  assert.equal(records.get('File/b'), b);
  assert.equal(out.records.get('File/a')!.lastApplied, desired);
});
