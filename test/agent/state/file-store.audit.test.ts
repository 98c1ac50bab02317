/**
 * The audit log read from its end in bounded memory, and rotated by size
 * (real files in a temp dir).
 */
import assert from 'node:assert/strict';
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FileStateStore } from '../../../agent/state/file-store.js';
import type { AuditRecord } from '../../../agent/state/types.js';

async function tmp(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'steward-audit-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

const rec = (name: string, pad = 0): AuditRecord => ({
  at: '2026-01-01T00:00:00.000Z',
  revision: 'a'.repeat(40),
  kind: 'File',
  name,
  id: `${name}.conf`,
  patch: [{ op: 'replace', path: '/spec/content', value: 'x'.repeat(pad) }],
  outcome: 'applied',
  durationMs: 1,
});

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('readAudit (what GET /v1/audit serves) on a 100 MB log: 1000 newest records in bounded memory (growth far below the file size)', async (t) => {
  const dir = await tmp(t);
  const store = new FileStateStore(dir, { auditMaxBytes: 2 ** 30 }); // one 100 MB file, not rotated
  // ~100 MB of 400-byte lines, written in 1 MiB blocks; the newest record is the last line.
  const line = `${JSON.stringify(rec('old', 200))}\n`;
  const block = Buffer.from(line.repeat(Math.floor(2 ** 20 / line.length)));
  const h = await open(store.auditPath, 'w', 0o600);
  let size = 0;
  while (size < 100 * 2 ** 20) {
    await h.write(block);
    size += block.length;
  }
  await h.close();
  await store.appendAudit([rec('newest')]);
  assert.ok((await stat(store.auditPath)).size >= 100 * 2 ** 20);

  gc();
  const base = process.memoryUsage();
  let peak = 0;
  let sampling = true;
  const sample = () => {
    const m = process.memoryUsage();
    peak = Math.max(peak, m.rss - base.rss, m.heapUsed + m.arrayBuffers - base.heapUsed - base.arrayBuffers);
    if (sampling) setImmediate(sample);
  };
  sample();
  const read = await store.readAudit(1000);
  sampling = false;
  sample();
  assert.equal(read.records.length, 1000);
  assert.equal(read.records[0]!.name, 'newest');
  assert.deepEqual(read.skipped, []);
  console.log(
    `readAudit(1000) on a ${(size / 2 ** 20).toFixed(0)} MiB log: peak memory growth ${(peak / 2 ** 20).toFixed(1)} MiB`,
  );
  assert.ok(peak < 20 * 2 ** 20, `memory grew by ${peak} bytes`);
});

test('rotation by size keeps N files; reads continue into rotated files; nothing is lost within what is kept', async (t) => {
  const dir = await tmp(t);
  const maxBytes = 2000;
  const keep = 3;
  const store = new FileStateStore(dir, { auditMaxBytes: maxBytes, auditKeep: keep });
  const lineBytes = Buffer.byteLength(`${JSON.stringify(rec('r000'))}\n`);
  const N = 100;
  for (let i = 0; i < N; i++) await store.appendAudit([rec(`r${String(i).padStart(3, '0')}`)]);
  const files = (await readdir(dir)).sort();
  assert.deepEqual(files, ['audit.log', 'audit.log.1', 'audit.log.2', 'audit.log.3']);
  for (const f of files)
    assert.ok((await stat(join(dir, f))).size <= maxBytes, `${f} is at most ${maxBytes} bytes`);
  for (const f of files) assert.equal((await stat(join(dir, f))).mode & 0o777, 0o600, f);

  const all = await store.readAudit(0);
  const perFile = Math.floor(maxBytes / lineBytes);
  const names = all.records.map((r) => r.name);
  // Newest first, contiguous, ending at the newest; the current file plus `keep` full rotated ones.
  const expected = Array.from({ length: N }, (_, i) => `r${String(i).padStart(3, '0')}`)
    .reverse()
    .slice(0, names.length);
  assert.deepEqual(names, expected);
  assert.ok(
    names.length > keep * perFile && names.length <= (keep + 1) * perFile,
    `${names.length} records kept`,
  );
  // A limit larger than the current file's records continues into the rotated ones.
  const current = (await store.readAudit(0)).records.length - keep * perFile;
  const some = await store.readAudit(current + 5);
  assert.deepEqual(
    some.records.map((r) => r.name),
    expected.slice(0, current + 5),
  );
  assert.deepEqual(
    (await store.readAudit(1)).records.map((r) => r.name),
    ['r099'],
  );
});

test('a torn last line is reported and skipped when reading backwards, also across a rotation', async (t) => {
  const dir = await tmp(t);
  const store = new FileStateStore(dir, { auditMaxBytes: 10_000, auditKeep: 2 });
  await store.appendAudit([rec('a'), rec('b')]);
  const h = await open(store.auditPath, 'a');
  await h.write('{"at":"2026-01-01T00:00:00.000Z","revision":"ab');
  await h.close();
  const torn = await store.readAudit(10);
  assert.deepEqual(
    torn.records.map((r) => r.name),
    ['b', 'a'],
  );
  assert.equal(torn.skipped.length, 1);
  assert.equal(torn.skipped[0]!.reason, 'torn last line (a write was interrupted)');
  // A restarted agent rotates the torn file away with its next big append.
  const after = new FileStateStore(dir, { auditMaxBytes: 10_000, auditKeep: 2 });
  await after.appendAudit([rec('c', 9_800)]);
  const read = await after.readAudit(10);
  assert.deepEqual(
    read.records.map((r) => r.name),
    ['c', 'b', 'a'],
  );
  assert.deepEqual(
    read.skipped.map((s) => [s.file, s.reason]),
    [['audit.log.1', 'torn last line (a write was interrupted)']],
  );
});
