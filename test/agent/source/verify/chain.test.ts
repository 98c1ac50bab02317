/**
 * Strict mode's walk (`last..tip`) over real repositories made with git and
 * read with isomorphic-git: linear history, merges (also of a branch older than
 * the last verified commit, with a skewed clock), a rewritten history, the
 * limit, and a commit missing beyond a shallow edge.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import isogit from 'isomorphic-git';
import {
  type ChainCommit,
  commitsSince,
  type ReadChainCommit,
} from '../../../../agent/source/verify/chain.js';
import { git } from '../../../helpers/git-repo.js';
import { commitSigned, initRepo } from '../../../helpers/signing.js';

let dir: string;
let n = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'steward-chain-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function newRepo(): Promise<{ repo: string; read: ReadChainCommit; reads: () => number }> {
  const repo = join(dir, `r${++n}`);
  await initRepo(repo);
  let count = 0;
  const read: ReadChainCommit = async (oid) => {
    count++;
    try {
      const { commit } = await isogit.readCommit({ fs, gitdir: join(repo, '.git'), oid });
      return { parents: commit.parent, time: commit.committer.timestamp } satisfies ChainCommit;
    } catch {
      return null;
    }
  };
  return { repo, read, reads: () => count };
}

/** A commit at `t` seconds (the committer time steers the walk). */
const at = (repo: string, msg: string, t: number): Promise<string> =>
  commitSigned(repo, { format: 'none' }, msg, {
    date: `@${1_700_000_000 + t} +0000`,
    file: `${msg.split(' ')[0]}.txt`,
  });

test('linear history: the commits after the last verified one, oldest first, the tip included', async () => {
  const { repo, read } = await newRepo();
  const c: string[] = [];
  for (let i = 1; i <= 5; i++) c.push(await at(repo, `c${i}`, i));
  assert.deepEqual(await commitsSince(c[4]!, c[1]!, read), { ok: true, commits: [c[2], c[3], c[4]] });
  assert.deepEqual(await commitsSince(c[4]!, c[3]!, read), { ok: true, commits: [c[4]] });
  assert.deepEqual(await commitsSince(c[4]!, c[4]!, read), { ok: true, commits: [] });
});

test('a merge: both sides since the last verified commit, nothing before it', async () => {
  const { repo, read } = await newRepo();
  const m0 = await at(repo, 'm0', 1);
  const m1 = await at(repo, 'm1', 2);
  await git(repo, ['checkout', '-q', '-b', 'side']);
  const s1 = await at(repo, 's1', 3);
  const s2 = await at(repo, 's2', 5);
  await git(repo, ['checkout', '-q', 'main']);
  const m2 = await at(repo, 'm2', 4);
  await git(repo, ['merge', '-q', '--no-ff', '--no-edit', 'side'], {
    GIT_COMMITTER_DATE: '@1700000006 +0000',
  });
  const merge = await git(repo, ['rev-parse', 'HEAD']);
  const r = await commitsSince(merge, m1, read);
  assert.deepEqual(r, { ok: true, commits: [s1, m2, s2, merge] });
  assert.ok(!r.ok || !r.commits.includes(m0));
});

test('merging a branch older than the last verified commit, with a skewed clock: only the new commits', async () => {
  const { repo, read } = await newRepo();
  const root = await at(repo, 'root', 1);
  const m0 = await at(repo, 'm0 (clock ahead)', 10);
  const m1 = await at(repo, 'm1 (last verified)', 2);
  const m2 = await at(repo, 'm2', 3);
  await git(repo, ['checkout', '-q', '-b', 'old', m0]);
  const o1 = await at(repo, 'o1', 4);
  await git(repo, ['checkout', '-q', 'main']);
  await git(repo, ['merge', '-q', '--no-ff', '--no-edit', 'old'], {
    GIT_COMMITTER_DATE: '@1700000005 +0000',
  });
  const merge = await git(repo, ['rev-parse', 'HEAD']);
  const r = await commitsSince(merge, m1, read);
  assert.deepEqual(r, { ok: true, commits: [m2, o1, merge] });
  assert.ok(r.ok && !r.commits.includes(root) && !r.commits.includes(m0));
});

test('a rewritten history (the last verified commit dropped) is not-ancestor, with the new commits', async () => {
  const { repo, read } = await newRepo();
  const c1 = await at(repo, 'c1', 1);
  const c2 = await at(repo, 'c2', 2);
  const c3 = await at(repo, 'c3', 3);
  await git(repo, ['reset', '-q', '--hard', c1]);
  const r2 = await at(repo, 'r2', 4);
  const r3 = await at(repo, 'r3', 5);
  const r = await commitsSince(r3, c3, read);
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.reason === 'not-ancestor');
  assert.deepEqual(r.commits, [r2, r3]);
  assert.match(r.message, new RegExp(`${c3.slice(0, 12)} is not in the history of ${r3.slice(0, 12)}`));
  // The old tip from the new one's point of view: also not an ancestor.
  const back = await commitsSince(c2, r3, read);
  assert.ok(!back.ok && back.reason === 'not-ancestor');
});

test('bounded: more commits than the limit is too-many, after at most limit reads', async () => {
  const { repo, read, reads } = await newRepo();
  const c: string[] = [];
  for (let i = 1; i <= 8; i++) c.push(await at(repo, `c${i}`, i));
  const r = await commitsSince(c[7]!, c[0]!, read, 4);
  assert.ok(!r.ok && r.reason === 'too-many' && r.limit === 4, JSON.stringify(r));
  assert.ok(reads() <= 5, `read ${reads()} commits`);
  assert.ok((await commitsSince(c[7]!, c[0]!, read, 8)).ok);
});

test('a commit missing (beyond a shallow edge) is missing, naming it, so the caller can deepen', async () => {
  const { repo, read } = await newRepo();
  const c: string[] = [];
  for (let i = 1; i <= 4; i++) c.push(await at(repo, `c${i}`, i));
  const shallow: ReadChainCommit = (oid) => (oid === c[1] ? Promise.resolve(null) : read(oid));
  const r = await commitsSince(c[3]!, c[0]!, shallow);
  assert.ok(!r.ok && r.reason === 'missing' && r.oid === c[1], JSON.stringify(r));
  const tipGone = await commitsSince('0'.repeat(40), c[0]!, read);
  assert.ok(!tipGone.ok && tipGone.reason === 'missing');
});
