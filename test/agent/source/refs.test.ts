/**
 * `looseCommit` (agent/source/refs.ts): a local source's ref read without a git process, only when that is
 * certain; everything else is left to `git rev-parse`. Real repositories, real git; what it answers is checked
 * against git's own answer, and the native engine is counted (no process for a loose commit).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NativeGitEngine } from '../../../agent/source/native-git.js';
import { looseCommit } from '../../../agent/source/refs.js';
import { isolatedGitEnv } from '../../helpers/git-repo.js';

function repo(t: { after: (fn: () => void) => void }): { dir: string; git: (...args: string[]) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'steward-refs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = {
    ...isolatedGitEnv(),
    GIT_AUTHOR_NAME: 't',
    GIT_AUTHOR_EMAIL: 't@x',
    GIT_COMMITTER_NAME: 't',
    GIT_COMMITTER_EMAIL: 't@x',
  };
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, env, encoding: 'utf8' }).trim();
  git('init', '-q', '-b', 'main');
  writeFileSync(join(dir, 'a.yaml'), 'x: 1\n');
  git('add', '.');
  git('commit', '-q', '-m', 'one');
  return { dir, git };
}

test('a loose branch naming a loose commit is read as git reads it', (t) => {
  const { dir, git } = repo(t);
  assert.equal(
    looseCommit(join(dir, '.git'), 'refs/heads/main'),
    git('rev-parse', 'refs/heads/main^{commit}'),
  );
  git('tag', 'light');
  assert.equal(
    looseCommit(join(dir, '.git'), 'refs/tags/light'),
    git('rev-parse', 'refs/tags/light^{commit}'),
  );
  assert.equal(looseCommit(join(dir, '.git'), 'refs/heads/nope'), null, 'no such ref');
});

test('anything git would have to resolve further is left to git', (t) => {
  const { dir, git } = repo(t);
  const gitdir = join(dir, '.git');
  git('tag', '-a', '-m', 'annotated', 'v1');
  assert.equal(looseCommit(gitdir, 'refs/tags/v1'), null, 'an annotated tag (a tag object to peel)');
  writeFileSync(join(gitdir, 'refs', 'heads', 'tree'), `${git('rev-parse', 'HEAD^{tree}')}\n`);
  assert.equal(looseCommit(gitdir, 'refs/heads/tree'), null, 'a ref naming a tree, not a commit');
  writeFileSync(join(gitdir, 'refs', 'heads', 'sym'), 'ref: refs/heads/main\n');
  assert.equal(looseCommit(gitdir, 'refs/heads/sym'), null, 'a symbolic ref');
  assert.equal(looseCommit(gitdir, 'refs/heads/../../HEAD'), null, 'a name leaving refs/');
  git('gc', '-q');
  assert.equal(looseCommit(gitdir, 'refs/heads/main'), null, 'packed refs and objects');
});

test('native engine, local source: a loose commit is resolved without a git process, the same as with one', async (t) => {
  const { dir, git } = repo(t);
  const engine = (d: string) =>
    new NativeGitEngine({
      url: d,
      kind: 'local',
      ref: 'main',
      path: '.',
      auth: null,
      cacheDir: join(d, 'c'),
    });
  const fresh = engine(dir);
  const got = await fresh.resolve();
  assert.deepEqual(got, { sha: git('rev-parse', 'HEAD'), fullRef: 'refs/heads/main' });
  assert.equal(fresh.stats.processes, 0, 'git processes to resolve a loose commit');
  git('gc', '-q');
  const packed = engine(dir);
  assert.deepEqual(await packed.resolve(), got, 'packed: git rev-parse answers the same');
  assert.equal(packed.stats.processes, 1);
});
