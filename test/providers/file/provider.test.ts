/**
 * The file provider on a real directory, driven directly: cases where the
 * file at a managed path is shared with something outside the root.
 */
import assert from 'node:assert/strict';
import { chmod, link, mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileKind } from '../../../providers/file/kind.js';
import { FileProvider } from '../../../providers/file/provider.js';
import type { ApplyOutcome, DesiredResource } from '../../../providers/types.js';

/** A File resource as a revision would carry it. */
function fileResource(name: string, spec: Record<string, unknown>): DesiredResource {
  return { key: `File/${name}`, kind: 'File', name, spec, desired: fileKind.toDesired(spec), origin: '' };
}

test('a managed file hard-linked to one outside the root: a mode fix does not chmod the outside file', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-fp-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  await mkdir(root);
  await writeFile(join(base, 'secret'), 'outside\n', { mode: 0o600 });
  await chmod(join(base, 'secret'), 0o600);
  await link(join(base, 'secret'), join(root, 'a.conf'));

  const spec = { path: 'a.conf', mode: '0644' };
  const r = fileResource('a', spec);
  const p = new FileProvider({ root });
  const seen = (await p.observe([r])).get('File/a')!;
  assert.equal(seen.status, 'present');
  const outcomes: ApplyOutcome[] = await p.apply(
    [
      {
        resource: r,
        ops: [{ op: 'replace', path: '/spec/mode', value: '0644' }],
        observed: seen.status === 'present' ? seen.doc : { spec: {} },
      },
    ],
    { shouldStop: () => false, onOutcome: async () => {} },
  );
  assert.equal(outcomes[0]!.outcome, 'applied');
  assert.equal((await stat(join(base, 'secret'))).mode & 0o777, 0o600, 'the outside file keeps its mode');
  assert.equal((await stat(join(root, 'a.conf'))).mode & 0o777, 0o644, 'the managed file has the mode asked');
  assert.equal(await readFile(join(root, 'a.conf'), 'utf8'), 'outside\n', 'with the content it had');
  assert.equal((await stat(join(root, 'a.conf'))).nlink, 1, 'and no longer shared');
});

test('a managed path made huge (a sparse file costs the attacker no disk) is an observe error, never read into memory', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-fp-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  await mkdir(root);
  await writeFile(join(root, 'a.conf'), '');
  await truncate(join(root, 'a.conf'), 9 * 1024 * 1024);
  const spec = { path: 'a.conf', content: 'a\n' };
  const r = fileResource('a', spec);
  const seen = (await new FileProvider({ root }).observe([r])).get('File/a')!;
  assert.equal(seen.status, 'error');
  assert.equal(seen.status === 'error' ? seen.code : null, 'FILE_TOO_LARGE');
});

test('temp files a crash left in managed folders are swept once at the daemon start, nothing else', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-fp-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'other'));
  const stale = join(root, 'etc', '.steward-tmp-motd-0a1b2c3d4e5f');
  const elsewhere = join(root, 'other', '.steward-tmp-x-0a1b2c3d4e5f');
  const mine = join(root, 'etc', 'keep.conf');
  for (const f of [stale, elsewhere, mine]) await writeFile(f, 'half-written\n');
  const spec = { path: 'etc/motd', content: 'hi\n' };
  const r = fileResource('motd', spec);

  // A one-shot command (plan) writes nothing: the temp file stays.
  await new FileProvider({ root, stateDir: join(base, 'state'), recordIdentity: false }).observe([r]);
  assert.equal(await readFile(stale, 'utf8'), 'half-written\n');

  await new FileProvider({ root, stateDir: join(base, 'state') }).observe([r]);
  await assert.rejects(stat(stale), { code: 'ENOENT' });
  assert.equal(
    await readFile(elsewhere, 'utf8'),
    'half-written\n',
    'a folder with no managed file is not touched',
  );
  assert.equal(await readFile(mine, 'utf8'), 'half-written\n', 'only steward-prefixed names');
});
