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
import { silentLogger } from '../../agent/log.js';
import { Reconciler } from '../../agent/reconciler.js';
import type { Revision } from '../../agent/source/source.js';
import { FileStateStore } from '../../agent/state/file-store.js';
import { freshState, type PersistedState } from '../../agent/state/types.js';
import { seededRandom } from '../../policies/backoff.js';
import { guardrails } from '../policies/fixtures.js';
import { MemoryProvider, thing, thingKind } from '../helpers/memory.js';

test('steady cycles write nothing to the state store once the soak is over and the bucket is full', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steward-steady-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const names = ['a', 'b', 'c', 'd', 'e', 'f'];
  const provider = new MemoryProvider();
  for (const n of names) provider.world.set(n, { value: `${n} new` });
  const store = new FileStateStore(dir);
  let now = Date.UTC(2026, 0, 1);
  const reconciler = new Reconciler({
    kinds: new Map([[thingKind.kind, thingKind]]),
    providers: new Map([['memory', provider]]),
    store,
    guardrails: guardrails({ soak: { observeCycles: 2 }, rateLimit: { actionsPerMinute: 60, burst: 5 } }),
    initialMode: 'enforce',
    clock: () => now,
    random: seededRandom(1),
    log: silentLogger,
    emit: () => {},
  });
  const revision: Revision = {
    sha: 'a'.repeat(40),
    fetchedAt: now,
    resources: names.map((n) => thing(n, `${n} new`)),
  };
  let state: PersistedState = freshState();
  const written: number[] = [];
  for (let i = 0; i < 8; i++) {
    const before = store.bytesWritten;
    state = (await reconciler.cycle(revision, state, () => false)).state;
    written.push(store.bytesWritten - before);
    now += 30_000; // a reconcile interval: the rate limit refills, as in the agent
  }
  assert.equal(provider.applied.length, 0, 'converged all along');
  assert.deepEqual(written.slice(4), [0, 0, 0, 0], `bytes written per cycle: ${written.join(', ')}`);
});
