import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isStewardError } from '../../../core/errors.js';
import { FileStateStore } from '../../../agent/state/file-store.js';
import { acquireLock } from '../../../agent/state/lock.js';
import { type AuditRecord, freshState } from '../../../agent/state/types.js';

async function tmp(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'steward-state-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

const rec = (name: string): AuditRecord => ({
  at: '2026-01-01T00:00:00.000Z',
  revision: 'abc',
  kind: 'File',
  name,
  id: `${name}.conf`,
  patch: [],
  outcome: 'applied',
  durationMs: 1,
});

test('a missing store is a fresh state; a saved one round-trips', async (t) => {
  const s = new FileStateStore(await tmp(t));
  assert.deepEqual(await s.load(), freshState());
  const state = { ...freshState(), mode: 'enforce' as const, freeze: { reason: 'x', by: 'y', since: 1 } };
  await s.save(state);
  assert.deepEqual(await s.load(), state);
});

test('a corrupt, truncated or tampered state file is reported, never reset to unfrozen', async (t) => {
  const dir = await tmp(t);
  const s = new FileStateStore(dir);
  await s.save({ ...freshState(), freeze: { reason: 'incident', by: 'ops', since: 1 } });
  const good = await readFile(s.statePath, 'utf8');
  const variants: Array<[string, string, RegExp]> = [
    ['truncated', good.slice(0, good.length / 2), /not valid JSON/],
    ['empty', '', /not valid JSON/],
    ['tampered', good.replace('incident', 'tampered'), /checksum mismatch/],
    ['foreign', '{"hello":1}', /not a steward state file/],
  ];
  for (const [what, text, msg] of variants) {
    await writeFile(s.statePath, text);
    await assert.rejects(
      s.load(),
      (e: unknown) => isStewardError(e, 'STATE_CORRUPT') && msg.test(e.message),
      what,
    );
  }
});

test('the audit log: newest first, a torn last line is reported and skipped, and the next append stays intact', async (t) => {
  const s = new FileStateStore(await tmp(t));
  await s.appendAudit([rec('a'), rec('b')]);
  await appendFile(s.auditPath, '{"at":"2026-01-01T00:00:00.000Z","revision":"ab'); // a crash mid-write
  const torn = await s.readAudit(0);
  assert.deepEqual(
    torn.records.map((r) => r.name),
    ['b', 'a'],
  );
  const tornAt = Buffer.byteLength(`${JSON.stringify(rec('a'))}\n${JSON.stringify(rec('b'))}\n`);
  assert.deepEqual(torn.skipped, [
    { file: 'audit.log', offset: tornAt, reason: 'torn last line (a write was interrupted)' },
  ]);

  const after = new FileStateStore(s.dir); // a restarted agent
  await after.appendAudit([rec('c')]);
  const read = await after.readAudit(0);
  assert.deepEqual(
    read.records.map((r) => r.name),
    ['c', 'b', 'a'],
  );
  assert.equal(read.skipped.length, 1);
  assert.equal(read.skipped[0]!.reason, 'not valid JSON');
  assert.deepEqual(
    (await after.readAudit(2)).records.map((r) => r.name),
    ['c', 'b'],
  );
});

test('one agent per state dir: a second one is refused with the holder pid; a stale lock is taken over', async (t) => {
  const dir = await tmp(t);
  const other = spawn('sleep', ['30']); // a live process that is not us
  t.after(async () => {
    other.kill();
  });
  await writeFile(join(dir, 'agent.lock'), `${other.pid}\n`);
  await assert.rejects(
    acquireLock(dir),
    (e: unknown) => isStewardError(e, 'STATE_LOCKED') && e.message.includes(`pid ${other.pid}`),
  );
  assert.equal(
    (await readFile(join(dir, 'agent.lock'), 'utf8')).trim(),
    String(other.pid),
    'the holder keeps its lock',
  );

  await writeFile(join(dir, 'agent.lock'), '999999999\n'); // no such process: stale
  const taken = await acquireLock(dir);
  assert.equal((await readFile(taken.path, 'utf8')).trim(), String(process.pid));
  await taken.release();
  await assert.rejects(readFile(taken.path), { code: 'ENOENT' });
});

test('a corrupt state file is reported without quoting it: state.json keeps file contents', async (t) => {
  const dir = await tmp(t);
  const s = new FileStateStore(dir);
  const state = freshState();
  state.resources['File/db'] = {
    lastApplied: { spec: { ensure: 'present', content: 'password=TOPSECRET-hunter2\n' } },
  } as never;
  await s.save(state);
  // One byte lost on disk: the content string's opening quote.
  const text = await readFile(s.statePath, 'utf8');
  await writeFile(s.statePath, text.replace('"password=', 'password='));
  await assert.rejects(
    () => s.load(),
    (e: unknown) => isStewardError(e, 'STATE_CORRUPT') && !/TOPSECRET|password=/.test((e as Error).message),
  );
});
