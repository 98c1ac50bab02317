/**
 * A provider that throws mid-apply instead of reporting its outcomes (a provider bug): the cycle still ends,
 * its unreported actions are failed (APPLY_THREW) and audited, the state keeps the write-ahead's attempt and
 * backoff, and the next cycle inside that backoff does not act again. Before, the cycle threw: the agent kept
 * its older state in memory, whose next save overwrote the durable attempt, and the resource was applied again
 * at once. (Found by an adversarial review.)
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Revision } from '../../agent/source/source.js';
import { FileStateStore } from '../../agent/state/file-store.js';
import { freshState, type PersistedState } from '../../agent/state/types.js';
import type { ApplyAction, ApplyControl, ApplyOutcome } from '../../providers/types.js';
import { MemoryProvider, thing, thingReconciler } from '../helpers/memory.js';

class Throwing extends MemoryProvider {
  throwOnce = false;
  override async apply(actions: readonly ApplyAction[], ctl: ApplyControl): Promise<ApplyOutcome[]> {
    if (!this.throwOnce) return super.apply(actions, ctl);
    this.throwOnce = false;
    this.applied.push(...actions.map((a) => a.resource.name));
    // Reports the first action, then throws before reporting the second.
    const first = actions[0]!;
    await ctl.onOutcome({ key: first.resource.key, id: first.resource.name, outcome: 'applied' });
    throw new Error('provider bug: threw mid-apply');
  }
}

test('a provider that throws mid-apply: its unreported actions fail, audited, and their backoff holds', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steward-throw-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const provider = new Throwing();
  for (const n of ['a', 'b', 'c', 'd', 'e']) provider.world.set(n, { value: `${n} new` });
  const store = new FileStateStore(dir);
  const clock = { now: Date.UTC(2026, 0, 1) };
  const reconciler = thingReconciler(provider, store, clock, {
    soak: { observeCycles: 0 },
    massDrift: { maxDrifted: 50, maxDriftedPercent: 100, minManaged: 5 },
  });
  const revision: Revision = {
    sha: 'a'.repeat(40),
    fetchedAt: clock.now,
    resources: ['a', 'b', 'c', 'd', 'e'].map((n) => thing(n, `${n} new`)),
  };
  let state: PersistedState = freshState();
  state = (await reconciler.cycle(revision, state, () => false)).state; // converged
  provider.world.set('a', { value: 'hand edit' });
  provider.world.set('b', { value: 'hand edit' });
  provider.throwOnce = true;
  clock.now += 30_000;
  const { state: after, report } = await reconciler.cycle(revision, state, () => false);
  state = after;
  assert.deepEqual(provider.applied, ['a', 'b']);
  assert.equal(report.applied, 1, 'the action reported before the throw');
  assert.equal(report.failed, 1, 'the one it never reported');
  // Newest first; each action's "started" record (written ahead) aside.
  const audit = (await store.readAudit(10)).records.filter((r) => r.outcome !== 'started');
  assert.deepEqual(
    audit.map((r) => [r.name, r.outcome]),
    [
      ['b', 'failed'],
      ['a', 'applied'],
    ],
  );
  assert.match(audit[0]?.error ?? '', /failed mid-apply \(provider bug: threw mid-apply\)/);
  const durable = (await new FileStateStore(dir).load()).resources['Thing/b'];
  assert.equal(durable?.attempts, 1, 'the attempt is durable');
  assert.ok((durable?.nextAttemptAt ?? 0) > clock.now, 'with its backoff');

  clock.now += 1_000; // well inside the backoff
  provider.applied = [];
  state = (await reconciler.cycle(revision, state, () => false)).state;
  assert.deepEqual(provider.applied, [], 'not acted on again inside its backoff');
});
