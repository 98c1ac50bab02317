/**
 * Native engine, counted (issue 12): a poll that finds the ref unchanged spawns no git process (the ref list
 * is read with steward's own HTTP client), and a one-file push lists only what changed (`git diff-tree`
 * against the revision read before, not `ls-tree -r` of the whole tree). What it accepts or rejects is what a
 * fresh source accepts or rejects: additions, deletions, edits and a too-large file included. Never timed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NativeGitEngine } from '../../../agent/source/native-git.js';
import type { PollOutcome } from '../../../agent/source/source.js';
import { serveRepo } from '../../helpers/git-source.js';

const FILES = 50;
const manifest = (i: number, v = 0): string =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: r${i} }\nspec: { path: etc/r${i}, content: "v${v} ${i}\\n" }\n`;
const file = (i: number): string => `fleet/d${i % 5}/f${i}.yaml`;

/** What a poll decided, comparable across sources. */
function verdict(o: PollOutcome): unknown {
  if (o.kind === 'accepted')
    return { kind: o.kind, resources: o.revision.resources.map((r) => JSON.stringify(r)).sort() };
  if (o.kind === 'rejected') return { kind: o.kind, problems: o.problems };
  return { kind: o.kind };
}

test('native engine over HTTP: an unchanged poll spawns no git; a one-file push lists only the change', async (t) => {
  const f = await serveRepo(t, 'git');
  const { repo } = f;
  for (let i = 0; i < FILES; i++) await repo.write(file(i), manifest(i));
  await repo.commitAndPush('fifty files');
  const source = async () => {
    const s = await f.source();
    return { engine: s.repo as NativeGitEngine, source: s };
  };
  const warm = await source();
  assert.equal((await warm.source.poll()).kind, 'accepted');

  const before = { ...warm.engine.stats };
  assert.equal((await warm.source.poll()).kind, 'unchanged');
  assert.equal(warm.engine.stats.processes - before.processes, 0, 'git processes for an unchanged poll');

  /** Polls the warm source and a fresh one; they must agree. Returns what the warm one spawned and listed. */
  const push = async (what: string): Promise<{ processes: number; listed: number; kind: string }> => {
    await repo.commitAndPush(what);
    const s0 = { ...warm.engine.stats };
    const got = await warm.source.poll();
    const spent = {
      processes: warm.engine.stats.processes - s0.processes,
      listed: warm.engine.stats.listed - s0.listed,
      kind: got.kind,
    };
    const fresh = await (await source()).source.poll();
    assert.deepEqual(verdict(got), verdict(fresh), `${what}: the warm source agrees with a fresh one`);
    return spent;
  };

  await repo.write(file(7), manifest(7, 1));
  const edit = await push('edit one file');
  assert.equal(edit.kind, 'accepted');
  assert.equal(edit.listed, 1, 'tree entries listed for a one-file push');
  assert.ok(
    edit.processes <= 3,
    `${edit.processes} git processes for a one-file push (fetch, diff-tree, cat-file)`,
  );

  await repo.write('fleet/new/a.yaml', manifest(100));
  await repo.remove(file(3));
  assert.equal((await push('add one, delete one')).kind, 'accepted');

  await repo.write('fleet/d1/big.yaml', `# ${'x'.repeat(1024 * 1024 + 10)}\n`);
  assert.equal((await push('a too-large file')).kind, 'rejected');

  await repo.remove('fleet/d1/big.yaml');
  await repo.write(file(9), manifest(9, 2));
  assert.equal((await push('the large file removed again')).kind, 'accepted');

  await repo.write(
    file(11),
    'apiVersion: steward/v1\nkind: File\nmetadata: { name: r0 }\nspec: { path: etc/dup, content: "d" }\n',
  );
  assert.equal((await push('a duplicate name in a changed file')).kind, 'rejected');
});
