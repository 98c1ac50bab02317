/**
 * A steady cycle (everything converged, the soak long over, the bucket full) has nothing to persist: the
 * real file state store writes 0 bytes for it (counted, never timed). Before, the soak's cycle count and a
 * full bucket's refill time changed every cycle, and every cycle wrote (and fsynced) a journal line.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Revision } from '../../agent/source/source.js';
import { FileStateStore } from '../../agent/state/file-store.js';
import { freshState, type PersistedState } from '../../agent/state/types.js';
import type { AgentEvent } from '../../agent/events.js';
import { MemoryProvider, thing, thingReconciler } from '../helpers/memory.js';

function setup(dir: string, emit: (e: AgentEvent) => void = () => {}) {
  const names = ['a', 'b', 'c', 'd', 'e', 'f'];
  const provider = new MemoryProvider();
  for (const n of names) provider.world.set(n, { value: `${n} new` });
  const store = new FileStateStore(dir);
  const clock = { now: Date.UTC(2026, 0, 1) };
  const reconciler = thingReconciler(
    provider,
    store,
    clock,
    { soak: { observeCycles: 2 }, rateLimit: { actionsPerMinute: 60, burst: 5 } },
    emit,
  );
  const revision: Revision = {
    sha: 'a'.repeat(40),
    fetchedAt: clock.now,
    resources: names.map((n) => thing(n, `${n} new`)),
  };
  return { names, provider, store, clock, reconciler, revision };
}

test('a cycle that changes no record hands the records object it was given back; one that does, a new one', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steward-steady-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { provider, clock, reconciler, revision } = setup(dir);
  let state: PersistedState = freshState();
  for (let i = 0; i < 3; i++) {
    state = (await reconciler.cycle(revision, state, () => false)).state;
    clock.now += 30_000;
  }
  const steady = state.resources;
  state = (await reconciler.cycle(revision, state, () => false)).state;
  assert.equal(state.resources, steady, 'no copy of every record for a cycle that changed none');
  provider.world.set('c', { value: 'hand edit' });
  state = (await reconciler.cycle(revision, state, () => false)).state;
  assert.notEqual(state.resources, steady);
  assert.equal(provider.applied.join(','), 'c');
  assert.equal(state.resources['Thing/c']?.verifyPending, true, 'the apply is recorded');
  assert.equal(state.resources['Thing/a'], steady['Thing/a'], 'the other records are shared, not copied');
});

test('a cycle that throws after changing its records in place leaves the next cycle the records it was given', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steward-steady-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  let failRelease = false;
  const { clock, reconciler, revision } = setup(dir, (e) => {
    if (failRelease && e.type === 'resource_released') throw new Error('sink down');
  });
  let state: PersistedState = freshState();
  for (let i = 0; i < 4; i++) {
    state = (await reconciler.cycle(revision, state, () => false)).state;
    clock.now += 30_000;
  }
  const f = state.resources['Thing/f'];
  assert.ok(f, 'f has a record');
  // A revision without f: the release deletes f's record from the cycle's map, then the event sink throws.
  failRelease = true;
  const without: Revision = { ...revision, resources: revision.resources.filter((r) => r.name !== 'f') };
  await assert.rejects(
    reconciler.cycle(without, state, () => false),
    /sink down/,
  );
  failRelease = false;
  // The same state again, with f in Git: its record is the one the state holds, not the thrown cycle's.
  const next = (await reconciler.cycle(revision, state, () => false)).state;
  assert.equal(next.resources['Thing/f'], f);
  assert.deepEqual(Object.keys(next.resources).sort(), Object.keys(state.resources).sort());
});

test('steady cycles write nothing to the state store once the soak is over and the bucket is full', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steward-steady-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { provider, store, clock, reconciler, revision } = setup(dir);
  let state: PersistedState = freshState();
  const written: number[] = [];
  for (let i = 0; i < 8; i++) {
    const before = store.bytesWritten;
    state = (await reconciler.cycle(revision, state, () => false)).state;
    written.push(store.bytesWritten - before);
    clock.now += 30_000; // a reconcile interval: the rate limit refills, as in the agent
  }
  assert.equal(provider.applied.length, 0, 'converged all along');
  assert.deepEqual(written.slice(4), [0, 0, 0, 0], `bytes written per cycle: ${written.join(', ')}`);
});
