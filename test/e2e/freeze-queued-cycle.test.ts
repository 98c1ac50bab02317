/**
 * A freeze requested while a cycle waits its turn (behind another state change) stops that cycle's
 * actions: the freeze was asked for before the cycle started, so nothing of it may be applied.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileStateStore } from '../../agent/state/file-store.js';
import type { PersistedState } from '../../agent/state/types.js';
import { createOneFileRepo } from '../helpers/daemon.js';
import { makeHarness } from '../helpers/harness.js';

/** A real file store whose next save waits for `release()` (and says when it started waiting). */
class GatedStore extends FileStateStore {
  private gate: { entered: () => void; open: Promise<void> } | null = null;
  hold(): { entered: Promise<void>; release: () => void } {
    let release!: () => void;
    let entered!: () => void;
    const open = new Promise<void>((r) => {
      release = r;
    });
    const waiting = new Promise<void>((r) => {
      entered = r;
    });
    this.gate = { entered, open };
    return { entered: waiting, release };
  }
  override async save(s: PersistedState): Promise<void> {
    const g = this.gate;
    this.gate = null;
    if (g) {
      g.entered();
      await g.open;
    }
    await super.save(s);
  }
}

test('a freeze requested while a cycle is queued behind another state change: that cycle applies nothing', async (t) => {
  const { base, repo } = await createOneFileRepo();
  let store: GatedStore | undefined;
  const h = await makeHarness({
    sourceUrl: repo.workDir,
    store: (c) => (store = new GatedStore(c.state.dir)),
  });
  t.after(async () => {
    await h.close();
    await rm(base, { recursive: true, force: true });
  });
  await h.agent.poll();
  const gate = store!.hold();
  const mode = h.agent.setMode('enforce', 'ops'); // holds the agent's queue in its save
  await gate.entered;
  const cycle = h.agent.trigger('interval'); // queued behind it, not started
  const freeze = h.agent.freeze('incident INC-9', 'ops'); // asked for before the cycle starts
  gate.release();
  await Promise.all([mode, cycle, freeze]);
  assert.equal(h.agent.cycles, 1, 'the queued cycle ran');
  assert.equal(
    h.agent.lastCycle!.applied,
    0,
    `applied ${h.agent.lastCycle!.applied} after the freeze was asked for`,
  );
  assert.equal(existsSync(join(h.root, 'a.conf')), false);
  assert.notEqual(h.agent.currentState.freeze, null);
});
