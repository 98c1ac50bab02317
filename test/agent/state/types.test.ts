/**
 * The state file is checked against its schema on load: a state whose shape
 * is wrong is STATE_CORRUPT (never guessed at), an older one is migrated.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileStateStore } from '../../../agent/state/file-store.js';
import { freshState } from '../../../agent/state/types.js';
import { isStewardError } from '../../../core/errors.js';

/** A store whose state.json holds `state`, correctly enveloped and checksummed. */
async function storeWith(
  t: { after: (fn: () => Promise<void>) => void },
  state: unknown,
): Promise<FileStateStore> {
  const dir = await mkdtemp(join(tmpdir(), 'steward-state-shape-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const body = JSON.stringify(state);
  const sha256 = createHash('sha256').update(body).digest('hex');
  await writeFile(
    join(dir, 'state.json'),
    `{"format":"steward-state","sha256":"${sha256}","state":${body}}\n`,
  );
  return new FileStateStore(dir);
}

const record = { attempts: 0, cyclesActedDrifted: 0, stuck: false };

const corrupt: Array<[string, unknown, RegExp]> = [
  [
    'a resource record with a count as text',
    { ...freshState(), resources: { 'File/a': { ...record, attempts: '3' } } },
    /unexpected shape: resources\["File\/a"\]\.attempts: expected an integer, got a string/,
  ],
  ['a freeze without its reason', { ...freshState(), freeze: { by: 'ops', since: 1 } }, /unexpected shape/],
  ['an unknown mode', { ...freshState(), mode: 'enforcing' }, /mode/],
  ['a key steward never writes', { ...freshState(), frozen: false }, /unknown key "frozen"/],
  ['an approval with no sha', { ...freshState(), approvals: [{ by: 'x', at: 1, keys: null }] }, /sha/],
  ['a state that is not an object', null, /the state: expected a mapping/],
];
for (const [what, state, message] of corrupt) {
  test(`state file: ${what} is STATE_CORRUPT`, async (t) => {
    const s = await storeWith(t, state);
    await assert.rejects(s.load(), (e: unknown) => {
      assert.ok(isStewardError(e, 'STATE_CORRUPT'), String(e));
      assert.match(e.message, message);
      assert.match(e.message, /will not start with a guessed state/);
      return true;
    });
  });
}

test('state file: version 1 approvals become unbound version-2 approvals', async (t) => {
  const v1 = { ...freshState(), version: 1, approvals: ['abc123'] };
  const s = await storeWith(t, v1);
  assert.deepEqual((await s.load()).approvals, [
    { sha: 'abc123', by: 'unknown (before version 2)', at: 0, keys: null },
  ]);
});

test('state file: a version-2 file written before revision, soak and bucket existed loads with them null', async (t) => {
  const { revision: _r, soak: _s, bucket: _b, ...older } = freshState();
  const s = await storeWith(t, { ...older, mode: 'enforce', resources: { 'File/a': record } });
  assert.deepEqual(await s.load(), { ...freshState(), mode: 'enforce', resources: { 'File/a': record } });
});

test('state file: a freeze written before `until` existed loads as one only an unfreeze ends', async (t) => {
  const s = await storeWith(t, { ...freshState(), freeze: { reason: 'incident', by: 'ops', since: 1 } });
  const loaded = await s.load();
  assert.equal(loaded.freeze?.until ?? null, null);
  assert.equal(loaded.windowOverride ?? null, null);
});

test('state file: a freeze end and a window override round-trip; an override without its end is STATE_CORRUPT', async (t) => {
  const state = {
    ...freshState(),
    freeze: { reason: 'deploy', by: 'ops', since: 1, until: 2 },
    windowOverride: { reason: 'hotfix', by: 'ops', since: 1, until: 3 },
  };
  const s = await storeWith(t, state);
  assert.deepEqual(await s.load(), state);
  const bad = await storeWith(t, { ...freshState(), windowOverride: { reason: 'x', by: 'y', since: 1 } });
  await assert.rejects(bad.load(), (e: unknown) => isStewardError(e, 'STATE_CORRUPT'));
});
