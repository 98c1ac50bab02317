/**
 * `createGitEngine('auto')` (agent/source/engine.ts): for a local repository any `git` on the PATH will do
 * and is found without a process; for a remote source the git on the PATH must be ≥ 2.31, asked once with
 * `git --version`. A `git` that logs its calls and says it is 2.20 stands in for the real one. One process per
 * test file: the version probe's memo starts empty here.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createGitEngine, gitOnPath } from '../../../agent/source/engine.js';
import { GitRepository } from '../../../agent/source/git.js';
import { NativeGitEngine } from '../../../agent/source/native-git.js';

test('auto: a local repository takes any git on the PATH, unasked; a remote one a git ≥ 2.31, asked once', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'steward-engine-'));
  const path = process.env['PATH'];
  t.after(() => {
    process.env['PATH'] = path;
    rmSync(dir, { recursive: true, force: true });
  });
  const bin = join(dir, 'bin');
  const empty = join(dir, 'empty');
  mkdirSync(bin);
  mkdirSync(empty);
  const log = join(dir, 'calls');
  writeFileSync(join(bin, 'git'), `#!/bin/sh\necho "$@" >> '${log}'\necho 'git version 2.20.1'\n`);
  writeFileSync(join(empty, 'git'), 'not executable\n'); // skipped, as execvp skips it
  chmodSync(join(bin, 'git'), 0o755);
  const calls = () => readFileSync(log, { encoding: 'utf8', flag: 'a+' }).split('\n').filter(Boolean);
  const opts = { ref: 'main', path: 'fleet', auth: null, cacheDir: join(dir, 'cache') };
  const local = { ...opts, url: join(dir, 'repo'), kind: 'local' as const };
  const remote = { ...opts, url: 'https://git.example/fleet.git', kind: 'http' as const };

  process.env['PATH'] = `${empty}:${bin}`;
  assert.equal(gitOnPath(), join(bin, 'git'));
  assert.ok(createGitEngine(local, 'auto') instanceof NativeGitEngine, 'local, git 2.20 on the PATH: native');
  assert.deepEqual(calls(), [], 'no git process to choose the engine of a local repository');
  assert.ok(createGitEngine(remote, 'auto') instanceof GitRepository, 'remote, git 2.20: isomorphic-git');
  assert.ok(createGitEngine(remote, 'auto') instanceof GitRepository);
  assert.deepEqual(calls(), ['--version'], 'the version asked once per process');
  process.env['PATH'] = empty;
  assert.equal(gitOnPath(), null);
  assert.ok(createGitEngine(local, 'auto') instanceof GitRepository, 'no git on the PATH: isomorphic-git');
  assert.ok(
    createGitEngine(local, 'git') instanceof NativeGitEngine,
    "'git' is native whatever the PATH holds",
  );
});
