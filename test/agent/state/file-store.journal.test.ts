/**
 * The state journal (issue 12): a save writes what changed, not the whole fleet (bytes counted, never timed);
 * a torn last line is ignored and reported; any other bad line, or a journal without its snapshot, is
 * STATE_CORRUPT; compaction folds the journal into state.json; operator decisions go into state.json at once.
 */
import assert from 'node:assert/strict';
import { appendFile, copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileStateStore, type FileStateStoreOptions } from '../../../agent/state/file-store.js';
import { freshState, type PersistedState } from '../../../agent/state/types.js';
import { isStewardError } from '../../../core/errors.js';

type Rec = PersistedState['resources'][string];
const record = (attempts = 0): Rec => ({ attempts, cyclesActedDrifted: 0, stuck: false });

function fleet(n: number): PersistedState {
  const s = freshState();
  for (let i = 0; i < n; i++) s.resources[`File/r${i}`] = record();
  return s;
}

/** The next state as the reconciler makes it: unchanged records kept, a changed one replaced. */
const withRecord = (s: PersistedState, key: string, r: Rec | undefined): PersistedState => {
  const resources = { ...s.resources };
  if (r) resources[key] = r;
  else delete resources[key];
  return { ...s, resources };
};

async function dir(t: test.TestContext): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'steward-journal-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

const plain = (s: PersistedState): unknown => JSON.parse(JSON.stringify(s));

/** How many times `JSON.stringify` runs during `fn` (a save that strings every record shows as thousands). */
async function stringifyCalls(fn: () => Promise<void>): Promise<number> {
  const stringify = JSON.stringify;
  let calls = 0;
  JSON.stringify = ((...args: Parameters<typeof stringify>) => {
    calls++;
    return stringify(...args);
  }) as typeof stringify;
  try {
    await fn();
  } finally {
    JSON.stringify = stringify;
  }
  return calls;
}

test('a save writes what changed: one changed record costs the same bytes at 100 and 5,000 records', async (t) => {
  const perChange: number[] = [];
  for (const n of [100, 5_000]) {
    const d = await dir(t);
    const store = new FileStateStore(d);
    let s = fleet(n);
    await store.save(s); // the first save is the snapshot
    const before = store.bytesWritten;
    s = withRecord(s, 'File/r7', record(1));
    await store.save(s);
    perChange.push(store.bytesWritten - before);
    const again = store.bytesWritten;
    await store.save(s);
    assert.equal(store.bytesWritten, again, 'a save with nothing new writes nothing');
    s = withRecord(s, 'File/r7', record(1)); // rebuilt, same content: as a drifted resource's record each cycle
    await store.save(s);
    assert.equal(store.bytesWritten, again, 'a record rebuilt with the same content is not written again');
    assert.deepEqual(plain(await new FileStateStore(d).load()), plain(s));
  }
  assert.equal(perChange[0], perChange[1]);
  assert.ok(perChange[0]! < 1_000, `one record changed wrote ${perChange[0]} bytes`);
});

test('a save of the very records saved last writes only a changed head, and a restart reads it back', async (t) => {
  const d = await dir(t);
  const store = new FileStateStore(d);
  const s = fleet(50);
  await store.save(s);
  const before = store.bytesWritten;
  await store.save({ ...s }); // the same records object (a cycle that changed no record), the same head
  assert.equal(store.bytesWritten, before, 'nothing new, nothing written');
  const next = { ...s, bucket: { tokens: 2, updatedAt: 7 } }; // the same records object, a new head
  await store.save(next);
  assert.ok(store.bytesWritten > before && store.bytesWritten - before < 500, 'one small journal line');
  assert.deepEqual(plain(await new FileStateStore(d).load()), plain(next));
  assert.throws(
    () => {
      (s.resources as Record<string, unknown>)['File/r1'] = record(3);
    },
    TypeError,
    'what is kept as saved cannot change in place unseen',
  );
});

test('removed records are journalled too; a restart picks up where the journal ends', async (t) => {
  const d = await dir(t);
  const store = new FileStateStore(d);
  let s = fleet(10);
  await store.save(s);
  s = withRecord(s, 'File/r3', undefined);
  s = { ...s, bucket: { tokens: 3, updatedAt: 42 } };
  await store.save(s);
  const restarted = new FileStateStore(d);
  const loaded = await restarted.load();
  assert.deepEqual(plain(loaded), plain(s));
  // the restarted store diffs against what it loaded: one more change is one more line
  const next = withRecord(loaded, 'File/r4', record(2));
  await restarted.save(next);
  assert.deepEqual(plain(await new FileStateStore(d).load()), plain(next));
  assert.equal((await readFile(join(d, 'state.journal'), 'utf8')).trim().split('\n').length, 2);
});

test('a torn last journal line is ignored and reported; the next save starts a clean journal', async (t) => {
  const d = await dir(t);
  const store = new FileStateStore(d);
  let s = fleet(5);
  await store.save(s);
  s = withRecord(s, 'File/r1', record(1));
  await store.save(s);
  await appendFile(join(d, 'state.journal'), '0123456789abcdef {"base":"x","seq":2,"head":{"mo'); // a crash mid-write
  const notes: string[] = [];
  const reopened = new FileStateStore(d, { onNote: (m) => notes.push(m) });
  assert.deepEqual(plain(await reopened.load()), plain(s));
  assert.equal(notes.length, 1);
  assert.match(notes[0]!, /torn last line \(\d+ bytes/);
  assert.doesNotMatch(notes[0]!, /"base"/, 'the note never quotes the file');
  assert.deepEqual(reopened.loadNotes, notes);
  const next = withRecord(s, 'File/r2', record(3));
  await reopened.save(next);
  const clean = new FileStateStore(d);
  assert.deepEqual(plain(await clean.load()), plain(next));
  assert.deepEqual(clean.loadNotes, []);
});

test('a bad journal line before the end, or a journal without state.json, is STATE_CORRUPT', async (t) => {
  const d = await dir(t);
  const store = new FileStateStore(d);
  let s = fleet(3);
  await store.save(s);
  for (const a of [1, 2]) {
    s = withRecord(s, 'File/r0', record(a));
    await store.save(s);
  }
  const path = join(d, 'state.journal');
  const good = await readFile(path, 'utf8');
  await writeFile(path, good.replace('"attempts":1', '"attempts":9'));
  await assert.rejects(new FileStateStore(d).load(), (e: unknown) => isStewardError(e, 'STATE_CORRUPT'));
  await writeFile(path, good);
  await rm(join(d, 'state.json'));
  await assert.rejects(
    new FileStateStore(d).load(),
    (e: unknown) => isStewardError(e, 'STATE_CORRUPT') && /without the snapshot/.test((e as Error).message),
  );
});

test('compaction folds the journal into state.json; lines of the old snapshot are ignored', async (t) => {
  const d = await dir(t);
  const opts: FileStateStoreOptions = { compactMinBytes: 0 };
  const store = new FileStateStore(d, opts);
  let s = fleet(3);
  await store.save(s);
  const first = await stat(join(d, 'state.json'));
  let compactions = 0;
  let last = first.ino;
  for (let i = 0; i < 30; i++) {
    s = withRecord(s, `File/r${i % 3}`, record(i + 1));
    await store.save(s);
    const now = await stat(join(d, 'state.json'));
    if (now.ino !== last) compactions++;
    last = now.ino;
    const journal = await stat(join(d, 'state.journal'));
    assert.ok(journal.size <= now.size, 'the journal never outgrows the snapshot');
  }
  assert.ok(compactions > 0);
  assert.deepEqual(plain(await new FileStateStore(d).load()), plain(s));

  // A crash after the new snapshot but before the journal was emptied: the old lines are already in it.
  s = withRecord(s, 'File/r0', record(100));
  await store.save(s);
  const stale = join(d, 'stale.journal');
  await copyFile(join(d, 'state.journal'), stale);
  s = { ...s, mode: 'observe' }; // an operator decision: written into state.json itself
  await store.save(s);
  const persisted = JSON.parse(await readFile(join(d, 'state.json'), 'utf8')) as { state: PersistedState };
  assert.equal(persisted.state.mode, 'observe');
  assert.equal(persisted.state.resources['File/r0']?.attempts, 100);
  await copyFile(stale, join(d, 'state.journal'));
  assert.deepEqual(plain(await new FileStateStore(d).load()), plain(s));
});

test('a saved record and the records object are frozen (kept as saved, not copied): changing either in place throws instead of going unsaved', async (t) => {
  const d = await dir(t);
  const store = new FileStateStore(d);
  const s = fleet(3);
  await store.save(s);
  assert.throws(() => {
    (s.resources['File/r0'] as { attempts: number }).attempts = 5;
  }, TypeError);
  assert.throws(() => {
    s.resources['File/late'] = record(1);
  }, TypeError);
  const next = withRecord(s, 'File/r1', record(2));
  await store.save(next);
  assert.throws(() => {
    delete next.resources['File/r0'];
  }, TypeError);
  const loaded = await new FileStateStore(d).load();
  assert.deepEqual(plain(loaded), plain(next));
  assert.throws(
    () => {
      loaded.resources['File/late'] = record(1);
    },
    TypeError,
    'as loaded, too',
  );
});

const doc = (i: number) => ({ spec: { ensure: 'present', content: `line ${i}\n` } });

/** The state with every record's lastApplied a new object of the same content (as the first cycle or shareBases makes it). */
function repointed(state: PersistedState): PersistedState {
  const resources: PersistedState['resources'] = {};
  for (const k in state.resources)
    resources[k] = { ...state.resources[k]!, lastApplied: doc(Number(k.slice(6))) };
  return { ...state, resources };
}

/** `n` records saved by one store, then loaded by a new one: a restart. */
async function restart(t: test.TestContext, n: number) {
  const d = await dir(t);
  const s = freshState();
  for (let i = 0; i < n; i++) s.resources[`File/r${i}`] = { ...record(), lastApplied: doc(i) };
  await new FileStateStore(d).save(s);
  const store = new FileStateStore(d);
  return { d, store, loaded: await store.load() };
}

test('the first save after a restart compares the rebuilt records without a string of each, and writes nothing', async (t) => {
  const { store, loaded } = await restart(t, 1_000);
  const before = store.bytesWritten;
  const calls = await stringifyCalls(() => store.save(repointed(loaded)));
  assert.equal(store.bytesWritten, before, 'nothing new to write');
  assert.ok(calls < 10, `${calls} JSON.stringify calls for 1,000 records`);
});

test('adopt: a state equal by content to the one loaded is kept as saved (nothing written); one that differs is refused and saved later', async (t) => {
  const { d, store, loaded } = await restart(t, 100);
  const different = repointed(loaded);
  different.resources['File/r5'] = { ...different.resources['File/r5']!, attempts: 3 };
  assert.equal(store.adopt(different), false, 'a record that differs is never taken as saved');
  assert.equal(store.adopt({ ...repointed(loaded), mode: 'observe' }), false, 'nor an operator decision');
  await store.save(different);
  assert.equal(
    (await new FileStateStore(d).load()).resources['File/r5']!.attempts,
    3,
    'and is written by the next save',
  );

  const again = new FileStateStore(d);
  const adopted = repointed(await again.load());
  const before = again.bytesWritten;
  assert.equal(again.adopt(adopted), true);
  assert.equal(again.bytesWritten, before, 'adopting writes nothing');
  // Kept as saved: the next save of it compares nothing (the same record objects) and writes nothing.
  const calls = await stringifyCalls(() => again.save(adopted));
  assert.equal(again.bytesWritten, before);
  assert.ok(calls < 5, `${calls} JSON.stringify calls`);
  assert.throws(() => {
    adopted.resources['File/late'] = record();
  }, TypeError);
});
