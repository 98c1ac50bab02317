/** The pinned engine's search for an older commit: pure logic over the GitEngine interface (a fake history). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GitEngine } from '../../../agent/source/git.js';
import { PINNED_MAX_DEPTH, pinnedEngine } from '../../../agent/source/pinned.js';

/** A remote with a linear history `c0` (tip) … `cN`; `ensure` brings the tip, `deepen(by)` `by` more. */
function fakeRemote(length: number) {
  const history = Array.from({ length }, (_, i) => i.toString(16).padStart(40, '0'));
  const calls: string[] = [];
  let have = 0;
  const engine: GitEngine = {
    counters: { requests: 0, packRequests: 0, bytesIn: 0 },
    async resolve() {
      calls.push('resolve');
      return { sha: history[0]!, fullRef: 'refs/heads/main' };
    },
    async ensure(sha) {
      calls.push(`ensure c${history.indexOf(sha)}`);
      have = Math.max(have, 1);
    },
    async readManifests() {
      return { files: [], problems: [] };
    },
    async readCommitObject(oid) {
      return history.slice(0, have).includes(oid) ? Buffer.from('commit') : null;
    },
    async deepen(_ref, by) {
      calls.push(`deepen ${by}`);
      have = Math.min(history.length, have + by);
    },
  };
  return { engine, history, calls };
}

test('resolves to the pinned commit, on the configured ref', async () => {
  const { engine, history } = fakeRemote(3);
  const pinned = pinnedEngine(engine, history[2]!);
  assert.deepEqual(await pinned.resolve(), { sha: history[2], fullRef: 'refs/heads/main' });
});

test('fetches the tip, then deepens until the commit is there', async () => {
  const { engine, history, calls } = fakeRemote(100);
  const pinned = pinnedEngine(engine, history[70]!);
  const { sha, fullRef } = await pinned.resolve();
  await pinned.ensure(sha, fullRef);
  assert.deepEqual(calls, ['resolve', 'ensure c0', 'deepen 64', 'deepen 64']);
  assert.notEqual(await pinned.readCommitObject(history[70]!), null);
});

test('the tip itself needs no deepening; a commit already there no fetch at all', async () => {
  const { engine, history, calls } = fakeRemote(5);
  const pinned = pinnedEngine(engine, history[0]!);
  await pinned.ensure(history[0]!, 'refs/heads/main');
  assert.deepEqual(calls, ['resolve', 'ensure c0']);
  calls.length = 0;
  await pinned.ensure(history[0]!, 'refs/heads/main');
  assert.deepEqual(calls, [], 'present: nothing fetched');
});

test('a commit beyond the search depth, or on no fetched history: SOURCE_REF_NOT_FOUND naming what to do', async () => {
  const { engine, history, calls } = fakeRemote(PINNED_MAX_DEPTH + 10);
  const pinned = pinnedEngine(engine, history[PINNED_MAX_DEPTH + 5]!);
  await assert.rejects(pinned.ensure(history[0]!, 'refs/heads/main'), {
    code: 'SOURCE_REF_NOT_FOUND',
    message: /not among the last 256 commits of refs\/heads\/main; plan the branch or tag that has it/,
  });
  assert.ok(calls.filter((c) => c.startsWith('deepen')).length <= PINNED_MAX_DEPTH / 64, 'bounded');
  const stranger = pinnedEngine(fakeRemote(3).engine, 'f'.repeat(40));
  await assert.rejects(stranger.ensure('f'.repeat(40), 'refs/heads/main'), { code: 'SOURCE_REF_NOT_FOUND' });
});
