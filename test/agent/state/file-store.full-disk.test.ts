/**
 * The audit log on a state disk that fills up mid-append (a real small
 * tmpfs): an append that could not write its whole record must fail, never
 * resolve with a torn line (the write-ahead would then act with no readable
 * intent), and the next append after space came back must be a readable line.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { FileStateStore } from '../../../agent/state/file-store.js';
import type { AuditRecord } from '../../../agent/state/types.js';

const run = promisify(execFile);

const intent = (name: string, pad: number): AuditRecord => ({
  at: '2026-01-01T00:00:00.000Z',
  revision: 'a'.repeat(40),
  kind: 'File',
  name,
  id: `${name}.conf`,
  patch: [{ op: 'replace', path: '/spec/mode', value: 'x'.repeat(pad) }],
  outcome: 'started',
  action: `${name}-action`,
  durationMs: 0,
});

/** Fills `dir` until the file system refuses another byte. */
async function fill(dir: string): Promise<string> {
  const path = join(dir, 'filler');
  const h = await open(path, 'w');
  try {
    await h.writeFile('x'.repeat(1 << 20));
  } catch (e) {
    assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    await h.close();
  }
  return path;
}

test('a full state disk: an audit append that cannot write its whole record fails, and the next one stays readable', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-audit-full-'));
  const mnt = join(base, 'state');
  await mkdir(mnt);
  let mounted = false;
  t.after(async () => {
    if (mounted) await run('umount', [mnt]);
    await rm(base, { recursive: true, force: true });
  });
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
    mounted = true;
  } catch {
    t.skip('cannot mount a small tmpfs here (needs root)');
    return;
  }
  const store = new FileStateStore(mnt);
  await store.appendAudit([intent('first', 10)]);
  const filler = await fill(mnt);

  // Room for part of the record at most: the append must not report it durable.
  await assert.rejects(store.appendAudit([intent('torn', 9000)]), { code: 'ENOSPC' });

  await unlink(filler);
  await store.appendAudit([intent('after', 10)]);
  const read = await store.readAudit(10);
  assert.deepEqual(
    read.records.map((r) => r.name),
    ['after', 'first'],
    'every record that was reported written is readable',
  );
  assert.deepEqual(read.skipped, [], 'no torn line is left behind');
});
