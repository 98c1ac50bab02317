/**
 * End to end with the file provider: a real local Git repository as the
 * source, a real directory as the managed root, the agent driven one cycle
 * at a time.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestRepo } from '../helpers/git-repo.js';
import { type Harness, harnessOnNewRepo } from '../helpers/harness.js';
import { contentReplace } from '../helpers/content-op.js';

const file = (name: string, path: string, content: string, extra = '') =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: { path: ${path}, content: ${JSON.stringify(content)}${extra} }\n`;

const setup = (
  t: { after: (fn: () => Promise<void>) => void },
  opts: { mode?: 'observe' | 'enforce'; guardrails?: string } = {},
) => harnessOnNewRepo(t, opts);

const read = (h: Harness, p: string) => readFile(join(h.root, p), 'utf8');
const modeOf = async (h: Harness, p: string) => ((await stat(join(h.root, p))).mode & 0o777).toString(8);

async function commitFleet(repo: TestRepo, files: Record<string, string>, msg = 'fleet'): Promise<string> {
  for (const [p, text] of Object.entries(files)) await repo.write(`fleet/${p}`, text);
  return repo.commit(msg);
}

test('a hand-edited managed file is reverted; an unmanaged file is never touched', async (t) => {
  const { repo, h } = await setup(t);
  await commitFleet(repo, {
    'a.yaml': file('a', 'etc/a.conf', 'A\n', ', mode: "0640"'),
    'b.yaml': file('b', 'etc/b.conf', 'B\n'),
  });
  await mkdir(join(h.root, 'etc'), { recursive: true });
  await writeFile(join(h.root, 'etc/unmanaged.conf'), 'mine\n');
  const unmanagedBefore = await stat(join(h.root, 'etc/unmanaged.conf'));

  const first = await h.cycle();
  assert.equal(first.applied, 2);
  assert.equal(await read(h, 'etc/a.conf'), 'A\n');
  assert.equal(await modeOf(h, 'etc/a.conf'), '640');
  assert.equal((await h.cycle()).drifted, 0, 'the apply stuck');

  await writeFile(join(h.root, 'etc/a.conf'), 'hand edit\n');
  const second = await h.cycle();
  assert.equal(second.drifted, 1);
  assert.deepEqual(second.drift[0]!.patch, [
    contentReplace('hand edit\n', 'A\n', '@@ -1,1 +1,1 @@\n-hand edit\n+A\n'),
  ]);
  assert.equal(second.applied, 1);
  assert.equal(await read(h, 'etc/a.conf'), 'A\n');
  assert.equal(await modeOf(h, 'etc/a.conf'), '640', 'a content revert keeps the mode');

  const third = await h.cycle();
  assert.equal(third.drifted, 0, 'converged: empty diff, no action');
  assert.equal(third.applied, 0);

  const unmanagedAfter = await stat(join(h.root, 'etc/unmanaged.conf'));
  assert.equal(await read(h, 'etc/unmanaged.conf'), 'mine\n');
  assert.equal(unmanagedAfter.mtimeMs, unmanagedBefore.mtimeMs);
  assert.equal(unmanagedAfter.ino, unmanagedBefore.ino);

  const audit = await readFile(join(h.stateDir, 'audit.log'), 'utf8');
  const records = audit
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { name: string; outcome: string; patch: unknown[] });
  // Each cycle's intents are written ahead of its actions, then each outcome as it is known.
  assert.deepEqual(
    records.map((r) => `${r.name}:${r.outcome}`),
    ['a:started', 'b:started', 'a:applied', 'b:applied', 'a:started', 'a:applied'],
  );
});

test('a mode change by hand is reverted; a field removed from Git is released, not fought', async (t) => {
  const { repo, h } = await setup(t);
  await commitFleet(repo, { 'a.yaml': file('a', 'a.conf', 'A\n', ', mode: "0600"') });
  await h.cycle();
  await h.cycle();
  await chmod(join(h.root, 'a.conf'), 0o644);
  const r = await h.cycle();
  assert.deepEqual(r.drift[0]!.patch, [{ op: 'replace', path: '/spec/mode', value: '0600' }]);
  assert.equal(await modeOf(h, 'a.conf'), '600');

  // Git stops setting the mode: steward stops owning it.
  await commitFleet(repo, { 'a.yaml': file('a', 'a.conf', 'A\n') });
  await h.cycle();
  await chmod(join(h.root, 'a.conf'), 0o640);
  const after = await h.cycle();
  assert.equal(after.drifted, 0);
  assert.equal(await modeOf(h, 'a.conf'), '640');
  const rec = h.agent.currentState.resources['File/a']!;
  assert.deepEqual(rec.lastApplied, { spec: { ensure: 'present', content: 'A\n' } });
});

test('ensure: absent deletes the file; a manifest removed from Git releases the file and leaves it', async (t) => {
  const { repo, h } = await setup(t);
  await commitFleet(repo, { 'a.yaml': file('a', 'a.conf', 'A\n'), 'b.yaml': file('b', 'b.conf', 'B\n') });
  await h.cycle();
  await repo.write(
    'fleet/a.yaml',
    'apiVersion: steward/v1\nkind: File\nmetadata: { name: a }\nspec: { path: a.conf, ensure: absent }\n',
  );
  await repo.remove('fleet/b.yaml');
  await repo.commit('delete a, release b');
  const r = await h.cycle();
  assert.equal(r.managed, 1);
  assert.deepEqual(r.drift[0]!.patch, [{ op: 'replace', path: '/spec/ensure', value: 'absent' }]);
  await assert.rejects(stat(join(h.root, 'a.conf')), { code: 'ENOENT' });
  assert.equal(await read(h, 'b.conf'), 'B\n', 'released, not deleted');
  assert.deepEqual(
    h.events.filter((e) => e.type === 'resource_released'),
    [{ type: 'resource_released', key: 'File/b' }],
  );
  await writeFile(join(h.root, 'b.conf'), 'edited\n');
  await h.cycle();
  assert.equal(await read(h, 'b.conf'), 'edited\n', 'a released file is no longer managed');
  assert.equal(h.events.filter((e) => e.type === 'resource_released').length, 1, 'released is reported once');
});

test('an emptied folder deletes nothing', async (t) => {
  const { repo, h } = await setup(t);
  await commitFleet(repo, { 'a.yaml': file('a', 'a.conf', 'A\n'), 'b.yaml': file('b', 'b.conf', 'B\n') });
  await h.cycle();
  await repo.remove('fleet/a.yaml');
  await repo.remove('fleet/b.yaml');
  await repo.write('fleet/README.md', 'nothing here\n');
  await repo.commit('empty');
  const r = await h.cycle();
  assert.equal(r.managed, 0);
  assert.equal(await read(h, 'a.conf'), 'A\n');
  assert.equal(await read(h, 'b.conf'), 'B\n');
});

test('observe mode changes nothing and reports the drift', async (t) => {
  const { repo, h } = await setup(t, { mode: 'observe' });
  await commitFleet(repo, { 'a.yaml': file('a', 'a.conf', 'A\n') });
  await writeFile(join(h.root, 'a.conf'), 'other\n');
  for (let i = 0; i < 3; i++) {
    const r = await h.cycle();
    assert.equal(r.mode, 'observe');
    assert.equal(r.applied, 0);
    assert.equal(r.drifted, 1);
    assert.deepEqual(r.held, { observe: 1 });
    assert.deepEqual(r.drift[0]!.patch, [contentReplace('other\n', 'A\n', '@@ -1,1 +1,1 @@\n-other\n+A\n')]);
  }
  assert.equal(await read(h, 'a.conf'), 'other\n');
  await assert.rejects(readFile(join(h.stateDir, 'audit.log')), { code: 'ENOENT' });

  // The mode is persisted in the state dir and beats the config after a restart.
  await h.agent.setMode('enforce', 'test');
  await h.restart();
  assert.equal(h.agent.mode, 'enforce');
  await h.cycle();
  assert.equal(await read(h, 'a.conf'), 'A\n');
});

test('unsafe paths on disk: a symlinked folder leading outside the root is refused, nothing is written outside', async (t) => {
  const { repo, h, base } = await setup(t);
  const outside = join(base, 'outside');
  await mkdir(outside);
  await writeFile(join(outside, 'secret'), 'outside\n');
  await symlink(outside, join(h.root, 'evil'));
  await symlink(join(outside, 'secret'), join(h.root, 'link.conf'));
  await commitFleet(repo, {
    'a.yaml': file('a', 'evil/secret', 'pwned\n'),
    'b.yaml': file('b', 'evil/new.conf', 'pwned\n'),
    'c.yaml': file('c', 'link.conf', 'pwned\n'),
    'd.yaml': file('d', 'ok.conf', 'fine\n'),
  });
  const r = await h.cycle();
  assert.equal(r.applied, 1, 'only the safe file');
  const codes = Object.fromEntries(r.errors.map((e) => [e.name, e.code]));
  assert.deepEqual(codes, { a: 'PATH_ESCAPE', b: 'PATH_ESCAPE', c: 'FILE_NOT_REGULAR' });
  assert.match(
    r.errors.find((e) => e.name === 'a')!.error,
    /outside providers\.file\.root through a symlink/,
  );
  assert.equal(await readFile(join(outside, 'secret'), 'utf8'), 'outside\n');
  await assert.rejects(stat(join(outside, 'new.conf')), { code: 'ENOENT' });
  assert.equal(await read(h, 'ok.conf'), 'fine\n');
});

test('an unreadable root is an error for every File, never "missing": nothing is created', async (t) => {
  const { repo, h } = await setup(t);
  await commitFleet(repo, { 'a.yaml': file('a', 'a.conf', 'A\n') });
  await rm(h.root, { recursive: true });
  const r = await h.cycle();
  assert.equal(r.applied, 0);
  assert.equal(r.drifted, 0);
  assert.equal(r.errors[0]!.code, 'OBSERVE_FAILED');
  await assert.rejects(stat(h.root), { code: 'ENOENT' });
});

test('a directory where a managed file should be is an error, left alone', async (t) => {
  const { repo, h } = await setup(t);
  await commitFleet(repo, { 'a.yaml': file('a', 'a.conf', 'A\n') });
  await mkdir(join(h.root, 'a.conf'));
  const r = await h.cycle();
  assert.equal(r.errors[0]!.code, 'FILE_NOT_REGULAR');
  assert.ok((await stat(join(h.root, 'a.conf'))).isDirectory());
});

test('a failing apply is audited as failed, the rest of the cycle goes on', async (t) => {
  const { repo, h } = await setup(t);
  // a.conf's parent is a file, so creating it fails; b.conf is fine.
  await writeFile(join(h.root, 'blocker'), 'x');
  await commitFleet(repo, {
    'a.yaml': file('a', 'blocker/a.conf', 'A\n'),
    'b.yaml': file('b', 'b.conf', 'B\n'),
  });
  const r = await h.cycle();
  assert.equal(r.failed, 1);
  assert.equal(r.applied, 1);
  assert.equal(await read(h, 'b.conf'), 'B\n');
  const audit = (await readFile(join(h.stateDir, 'audit.log'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const failed = audit.find((a) => a['name'] === 'a' && a['outcome'] !== 'started')!;
  assert.equal(failed['outcome'], 'failed');
  assert.equal(typeof failed['error'], 'string');
  assert.equal(h.agent.currentState.resources['File/a']!.attempts, 1);
});

describe('a bad revision in a local repository', () => {
  let ctx: { repo: TestRepo; h: Harness; base: string };
  const cleanups: Array<() => Promise<void>> = [];
  before(async () => {
    ctx = await setup({ after: (fn) => cleanups.push(fn) });
  });
  after(async () => {
    for (const c of cleanups) await c();
  });

  test('is rejected as a whole with every error, and the last good revision stays in force', async () => {
    const { repo, h } = ctx;
    const good = await commitFleet(repo, {
      'a.yaml': file('a', 'a.conf', 'A\n'),
      'b.yaml': file('b', 'b.conf', 'B\n'),
    });
    await h.cycle();
    await h.cycle();
    await repo.write('fleet/a.yaml', file('a', 'a.conf', 'CHANGED\n'));
    await repo.write(
      'fleet/b.yaml',
      'apiVersion: steward/v1\nkind: File\nmetadata: { name: b }\nspec: { path: ../../etc/passwd }\n',
    );
    await repo.write('fleet/c.yaml', 'kind: [\n');
    const bad = await repo.commit('bad');
    const poll = await h.poll();
    assert.equal(poll.kind, 'rejected');
    assert.ok(poll.kind === 'rejected');
    assert.deepEqual(
      poll.problems.map((p) => `${p.file}:${p.line}:${p.col}`),
      ['fleet/b.yaml:4:15', 'fleet/c.yaml:2:1'],
    );
    assert.equal(h.agent.source.current!.sha, good);
    assert.equal(h.agent.source.rejected!.sha, bad);
    await writeFile(join(h.root, 'a.conf'), 'hand\n');
    const r = await h.cycle();
    assert.equal(r.revision, good);
    assert.equal(await read(h, 'a.conf'), 'A\n', 'enforces the good revision, not the half-good one');
    assert.equal(h.events.filter((e) => e.type === 'revision_rejected').length, 1);
  });
});
