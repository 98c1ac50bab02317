/**
 * Which `git` is on the PATH (agent/source/engine.ts): asked once per process, whether first without blocking
 * (`probeNativeGit`, what `steward plan` starts while its config loads) or synchronously (`nativeGitVersion`,
 * what `createGitEngine('auto')` reads). A `git` on the PATH that logs each call and prints a version stands in
 * for the real one. One process per test file, so the probe's memo starts empty here.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { nativeGitUsable, nativeGitVersion, probeNativeGit } from '../../../agent/source/engine.js';

test('the probe started without blocking is the one answer: the synchronous reader spawns no second git', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'steward-probe-'));
  const path = process.env['PATH'];
  t.after(() => {
    process.env['PATH'] = path;
    rmSync(dir, { recursive: true, force: true });
  });
  const log = join(dir, 'calls');
  writeFileSync(join(dir, 'git'), `#!/bin/sh\necho "$@" >> '${log}'\necho 'git version 2.30.9'\n`);
  chmodSync(join(dir, 'git'), 0o755);
  process.env['PATH'] = dir;
  const first = probeNativeGit();
  assert.equal(probeNativeGit(), first, 'a second caller shares the process in flight');
  assert.deepEqual(await first, { major: 2, minor: 30 });
  assert.deepEqual(nativeGitVersion(), { major: 2, minor: 30 });
  assert.equal(nativeGitUsable(), false, '2.30 is older than NATIVE_GIT_MIN (2.31): auto is isomorphic-git');
  assert.deepEqual(await probeNativeGit(), { major: 2, minor: 30 });
  assert.deepEqual(readFileSync(log, 'utf8').split('\n').filter(Boolean), ['--version']);
});
