import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignShards, fnv1a, shardOf, targetShards } from '../../policies/shards.js';

const keys = Array.from({ length: 3000 }, (_, i) => `Ec2Instance/web-${i}`);

test('shardOf: stable (pinned values), in range, and spread over every shard', () => {
  // Pinned: a change of hash would move every resource to another shard between two versions of steward.
  assert.equal(fnv1a('a'), 0xe40c292c, 'FNV-1a 32 of "a" (the published test vector)');
  assert.deepEqual(
    ['a', 'b', 'Ec2Instance/web-0'].map((k) => shardOf(k, 16)),
    [3, 2, 13],
  );
  const per = new Array<number>(16).fill(0);
  for (const k of keys) {
    const s = shardOf(k, 16);
    assert.ok(Number.isInteger(s) && s >= 0 && s < 16);
    per[s]!++;
  }
  // 3000 keys over 16 shards: ~187 each; none empty, none more than twice its share.
  assert.ok(Math.min(...per) > 90 && Math.max(...per) < 375, `spread: ${per.join(',')}`);
  assert.throws(() => shardOf('x', 0), RangeError);
});

test('assignShards: every shard to exactly one live agent, each ⌊count/n⌋ or one more, order of the list irrelevant', () => {
  for (const n of [1, 2, 3, 5, 7, 16, 20]) {
    const agents = Array.from({ length: n }, (_, i) => `agent-${i}`);
    const a = assignShards(64, agents);
    assert.equal(a.length, 64);
    const load = new Map<string, number>();
    for (const x of a) {
      assert.ok(x !== null && agents.includes(x));
      load.set(x, (load.get(x) ?? 0) + 1);
    }
    assert.ok(Math.max(...load.values()) <= Math.ceil(64 / n), `n=${n}: ${[...load.values()]}`);
    assert.ok(Math.min(...load.values()) >= Math.floor(64 / n), `n=${n}: ${[...load.values()]}`);
    assert.equal(load.size, Math.min(n, 64), 'every agent gets some');
    assert.deepEqual(assignShards(64, [...agents].reverse()), a, 'deterministic in the set');
  }
  assert.deepEqual(assignShards(4, []), [null, null, null, null]);
});

test('assignShards: an agent joining or leaving moves few shards (far fewer than a modulo rehash)', () => {
  const agents = ['a', 'b', 'c', 'd'];
  const before = assignShards(64, agents);
  const joined = assignShards(64, [...agents, 'e']);
  const moved = before.filter((x, s) => joined[s] !== x).length;
  // The newcomer's fair share is ⌈64/5⌉ = 13; a modulo rehash would move ~80% (51).
  assert.ok(moved <= 20, `join moved ${moved}`);
  assert.ok(joined.filter((x) => x === 'e').length >= 12);
  const left = assignShards(64, ['a', 'b', 'd']);
  const movedLeave = before.filter((x, s) => left[s] !== x).length;
  // c's 16 shards must move; a few more overflow from the bounded loads.
  assert.ok(movedLeave >= 16 && movedLeave <= 26, `leave moved ${movedLeave}`);
  assert.deepEqual(before.flatMap((x, s) => (x !== 'c' && left[s] !== x ? [s] : [])).length <= 10, true);
});

test('targetShards: the shards of one agent, including itself when missing from the list', () => {
  const all = assignShards(16, ['x', 'y', 'z']);
  assert.deepEqual(
    targetShards('y', 16, ['x', 'y', 'z']),
    all.flatMap((a, s) => (a === 'y' ? [s] : [])),
  );
  assert.deepEqual(targetShards('y', 16, ['x', 'z']), targetShards('y', 16, ['x', 'y', 'z']));
  assert.deepEqual(targetShards('solo', 8, []), [0, 1, 2, 3, 4, 5, 6, 7]);
});
