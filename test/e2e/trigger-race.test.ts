/**
 * A cycle asked for right as the running cycles end is run, not lost: `trigger` while cycles run only sets
 * "pending", and the run ends after its last look at "pending" — a trigger in between (a webhook's poll
 * finishing a few microtasks after the last cycle) must start a new run. Real agent, real repository; each
 * microtask depth around the end of the run is tried.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { test } from 'node:test';
import { createOneFileRepo } from '../helpers/daemon.js';
import { makeHarness } from '../helpers/harness.js';

test('a trigger a few microtasks after the last cycle of a run ends starts another cycle', async (t) => {
  const { base, repo } = await createOneFileRepo();
  const h = await makeHarness({ sourceUrl: repo.workDir });
  t.after(async () => {
    await h.close();
    await rm(base, { recursive: true, force: true });
  });
  await h.agent.poll();
  for (let depth = 0; depth < 12; depth++) {
    const before = h.agent.cycles;
    let asked: Promise<void> | null = null;
    let armed = true;
    h.agent.onCycle(() => {
      if (!armed) return;
      armed = false;
      let p: Promise<void> = Promise.resolve();
      for (let i = 0; i < depth; i++) p = p.then(() => undefined);
      asked = p.then(() => h.agent.trigger('late'));
    });
    await h.agent.trigger('first');
    while (asked === null) await new Promise((r) => setImmediate(r));
    await asked;
    await h.agent.idle();
    assert.equal(h.agent.cycles - before, 2, `the trigger ${depth} microtasks after the cycle ran a cycle`);
  }
});
