/**
 * CycleRecords, the cycle's records laid over the records object it was given: differentially against a plain
 * Map built from the same object, over random sequences of set / delete / get / has / size / iteration, and
 * what it hands back (the very object when nothing changed, else a new one; the given one never written).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CycleRecords } from '../../agent/records.js';
import type { ResourceRecord } from '../../policies/types.js';
import { seededRandom } from '../../policies/backoff.js';

const rec = (attempts: number): ResourceRecord => ({ attempts, cyclesActedDrifted: 0, stuck: false });

function base(n: number): Record<string, ResourceRecord> {
  const o: Record<string, ResourceRecord> = {};
  for (let i = 0; i < n; i++) o[`K/r${i}`] = Object.freeze(rec(i));
  return Object.freeze(o);
}

const sorted = (it: Iterable<[string, ResourceRecord]>) =>
  [...it].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

test('behaves as a Map built from the same object, under random sets and deletes', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const random = seededRandom(seed);
    const n = Math.floor(random() * 12);
    const given = base(n);
    const snapshot = JSON.stringify(given);
    const mine = CycleRecords.of(given);
    const ref = new Map(Object.entries(given));
    const key = () => `K/r${Math.floor(random() * (n + 4))}`; // some present, some not
    for (let step = 0; step < 60; step++) {
      const k = key();
      const r = random();
      if (r < 0.35) {
        const v = rec(100 + step);
        assert.equal(mine.set(k, v), mine);
        ref.set(k, v);
      } else if (r < 0.6)
        assert.equal(mine.delete(k), ref.delete(k), `seed ${seed} step ${step}: delete ${k}`);
      else if (r < 0.63) {
        mine.clear();
        ref.clear();
      }
      assert.equal(mine.get(k), ref.get(k), `seed ${seed} step ${step}: get ${k}`);
      assert.equal(mine.has(k), ref.has(k));
      assert.equal(mine.size, ref.size, `seed ${seed} step ${step}: size`);
    }
    assert.deepEqual(sorted(mine), sorted(ref));
    assert.deepEqual(sorted(mine.entries()), sorted(ref.entries()));
    assert.deepEqual([...mine.keys()].sort(), [...ref.keys()].sort());
    assert.equal([...mine.values()].length, ref.size);
    const each: string[] = [];
    mine.forEach((_v, k, m) => {
      assert.equal(m, mine);
      each.push(k);
    });
    assert.deepEqual(each.sort(), [...ref.keys()].sort());
    assert.deepEqual(sorted(new Map(mine)), sorted(ref), 'copied through its iterator');
    const out = mine.toObject();
    assert.deepEqual(sorted(Object.entries(out)), sorted(ref), 'hands back what the map holds');
    assert.equal(JSON.stringify(given), snapshot, 'the given object is never written');
    if (mine.changed) assert.notEqual(out, given);
  }
});

test('hands back the very object it was given when nothing changed; a copy for the write-ahead always', () => {
  const given = base(5);
  const mine = CycleRecords.of(given);
  assert.equal(mine.get('K/r2'), given['K/r2']);
  assert.equal(mine.delete('K/absent'), false);
  assert.equal(mine.changed, false, 'reads and a delete of nothing change nothing');
  assert.equal(mine.toObject(), given);
  const copy = mine.copyObject();
  assert.notEqual(copy, given);
  copy['K/r9'] = rec(9); // the write-ahead writes into its copy
  assert.equal(Object.hasOwn(given, 'K/r9'), false);
  mine.set('K/r2', given['K/r2']!); // set again, even to the same record: changed
  assert.equal(mine.changed, true);
  assert.notEqual(mine.toObject(), given);
});

test('a base key deleted then set again, and an added key deleted, count once', () => {
  const given = base(3);
  const mine = CycleRecords.of(given);
  mine.delete('K/r0');
  mine.set('K/r0', rec(7));
  mine.set('K/new', rec(1));
  mine.delete('K/new');
  mine.set('K/new2', rec(2));
  assert.equal(mine.size, 4);
  assert.deepEqual(Object.keys(mine.toObject()).sort(), ['K/new2', 'K/r0', 'K/r1', 'K/r2']);
  assert.equal(mine.get('K/r0')?.attempts, 7);
});
