import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../policies/backoff.js';
import { foldObservation, shareBases } from '../../policies/fold.js';
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

test('after a restart, records whose loaded base equals the revision are pointed at its documents; the first fold then rebuilds none', () => {
  const docs = ['a', 'b', 'c'].map((c) => ({ key: `File/${c}`, desired: { spec: { content: c } } }));
  const loaded: Record<string, ResourceRecord> = {
    'File/a': { ...clean(), lastApplied: { spec: { content: 'a' } } }, // a copy, as parsed from disk
    'File/b': { ...clean(), lastApplied: { spec: { content: 'b', mode: '0600' } } }, // differs: a removal to come
    'File/c': { ...clean(), lastApplied: docs[2]!.desired }, // already shared
    'File/gone': { ...clean(), lastApplied: { spec: { content: 'z' } } }, // no longer in Git
  };
  const frozen = Object.freeze({ ...loaded });
  const shared = shareBases(frozen, docs)!;
  assert.equal(shared['File/a']!.lastApplied, docs[0]!.desired);
  assert.equal(shared['File/b'], loaded['File/b']);
  assert.equal(shared['File/c'], loaded['File/c']);
  assert.equal(shared['File/gone'], loaded['File/gone']);
  assert.deepEqual(Object.keys(shared), Object.keys(loaded));
  assert.notEqual(frozen['File/a']!.lastApplied, docs[0]!.desired, 'the input is left as it was');
  assert.equal(shareBases(shared, docs), null, 'nothing left to share');

  // Counted: the first fold creates no record for a converged resource whose base is now shared.
  const records = new Map(Object.entries(shared));
  const out = foldObservation({
    converged: [docs[0]!, docs[2]!],
    drifted: [],
    records,
    handOver: true,
    now: 1_000_000,
    config,
    random: seededRandom(1),
  });
  assert.equal(out.records.get('File/a'), shared['File/a']);
  assert.equal(out.records.get('File/c'), shared['File/c']);
});
