/**
 * What only the native engine has to prove (SPEC §9): the credentials never
 * reach a git process (argv, environment) or the disk; git runs with hooks,
 * credential helpers and redirects off, and the user's own git configuration
 * is never read; the relay serves git alone; `auto` picks native git only
 * when there is one. Plus a
 * remote annotated tag, against both engines.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { createGitEngine } from '../../agent/source/engine.js';
import { GitRepository } from '../../agent/source/git.js';
import { gitHttpClient } from '../../agent/source/http-client.js';
import { NativeGitEngine, withRelay } from '../../agent/source/native-git.js';
import { DesiredStateSource } from '../../agent/source/source.js';
import { KINDS } from '../../providers/registry.js';
import { git } from '../helpers/git-repo.js';
import { ENGINES, SOURCE_AUTH, SOURCE_SECRETS, serveRepo } from '../helpers/git-source.js';

/** Sets an environment variable of this process for the rest of the test. */
function setEnv(t: TestContext, name: string, value: string): void {
  const before = process.env[name];
  process.env[name] = value;
  t.after(() => {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  });
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

test('native git never sees the credentials: not in any argv or environment, not on disk; hooks, helpers and redirects are off', async (t) => {
  const f = await serveRepo(t, 'git');
  const realGit = execFileSync('which', ['git'], { encoding: 'utf8' }).trim();
  const bin = join(f.dir, 'bin');
  const log = join(f.dir, 'git-calls.log');
  await mkdir(bin);
  // A `git` first on the PATH that logs its argv and environment, then runs the real one.
  await writeFile(
    join(bin, 'git'),
    `#!/bin/sh\n{ printf 'ARGV'; for a in "$@"; do printf ' [%s]' "$a"; done; printf '\\n'; env; } >> '${log}'\nexec '${realGit}' "$@"\n`,
  );
  await chmod(join(bin, 'git'), 0o755);
  setEnv(t, 'PATH', `${bin}:${process.env['PATH']}`);
  const source = await f.source();
  const o = await source.poll();
  assert.equal(o.kind, 'accepted', JSON.stringify(o));
  // One entry per git process: its argv line, then its environment. The test server's own
  // `git http-backend` runs through the wrapper too and is left out.
  const calls = (await readFile(log, 'utf8'))
    .split(/^(?=ARGV)/m)
    .filter((c) => !c.startsWith('ARGV [http-backend]'));
  const all = calls.join('');
  // The ref list is read with steward's own HTTP client (issue 12): no `git ls-remote` per poll.
  assert.doesNotMatch(all, /ARGV .*\[ls-remote\]/);
  assert.match(all, /ARGV .*\[fetch\]/);
  assert.match(all, /ARGV .*\[cat-file\] \[--batch\]/);
  for (const call of calls) {
    for (const flag of ['core.hooksPath=/dev/null', 'credential.helper=', 'http.followRedirects=false'])
      assert.ok(call.includes(`[${flag}]`), `${call.slice(0, 200)}: no ${flag}`);
    // HOME below which nothing can exist, not a temporary directory: a killed agent leaves nothing in TMPDIR.
    for (const env of [
      'GIT_CONFIG_NOSYSTEM=1',
      'GIT_CONFIG_GLOBAL=/dev/null',
      'GIT_TERMINAL_PROMPT=0',
      'HOME=/dev/null',
      'XDG_CONFIG_HOME=/dev/null',
    ])
      assert.ok(call.includes(`\n${env}\n`), `${call.slice(0, 200)}: no ${env}`);
  }
  for (const s of SOURCE_SECRETS) assert.ok(!all.includes(s), `a git process saw ${s}`);
  // Nothing the engine wrote holds the credentials.
  for (const file of await filesUnder(join(f.dir, 'cache-0'))) {
    if ((await stat(file)).size > 16 * 1024 * 1024) continue;
    const text = await readFile(file, 'latin1');
    for (const s of SOURCE_SECRETS) assert.ok(!text.includes(s), `${file} holds a secret`);
  }
  assert.ok(f.server.requests.every((r) => r.authorized));
});

test("native git ignores the user's git configuration and credential helpers", async (t) => {
  const f = await serveRepo(t, 'git');
  const home = join(f.dir, 'home');
  const marker = join(f.dir, 'helper-ran');
  await mkdir(home);
  // Were it read: every request would go to a dead port, and the helper would leave a marker.
  const config = `[url "http://127.0.0.1:9/"]\n\tinsteadOf = http://127.0.0.1:\n[credential]\n\thelper = "!touch '${marker}'"\n`;
  await writeFile(join(home, '.gitconfig'), config);
  setEnv(t, 'HOME', home);
  setEnv(t, 'GIT_CONFIG_GLOBAL', join(home, '.gitconfig'));
  setEnv(t, 'XDG_CONFIG_HOME', home);
  const o = await (await f.source()).poll();
  assert.equal(o.kind, 'accepted', JSON.stringify(o));
  await assert.rejects(stat(marker), /ENOENT/);
});

test("auto is native git when there is one, isomorphic-git when the PATH has no git; 'git' without one fails clearly", async (t) => {
  const f = await serveRepo(t);
  const opts = {
    url: f.server.repoUrl('desired'),
    kind: 'http' as const,
    ref: 'main',
    path: 'fleet',
    auth: null,
  };
  assert.ok(createGitEngine({ ...opts, cacheDir: join(f.dir, 'a') }, 'auto') instanceof NativeGitEngine);
  assert.ok(createGitEngine({ ...opts, cacheDir: join(f.dir, 'b') }, 'isomorphic') instanceof GitRepository);
  // With no git on the PATH at spawn time, the native engine says what to do.
  const engine = createGitEngine({ ...opts, auth: SOURCE_AUTH, cacheDir: join(f.dir, 'c') }, 'git');
  setEnv(t, 'PATH', join(f.dir, 'empty'));
  const o = await new DesiredStateSource(engine, KINDS, () => 0).poll();
  assert.equal(o.kind, 'error');
  if (o.kind === 'error') {
    assert.equal(o.error.code, 'SOURCE_UNREACHABLE');
    assert.match(o.error.message, /needs a `git` binary on the PATH/);
  }
});

for (const engine of ENGINES)
  describe(engine, () => {
    test('a remote annotated tag as the ref resolves to its commit', async (t) => {
      const f = await serveRepo(t, engine);
      const work = join(f.projectRoot, '.work', 'desired');
      await git(work, ['tag', '-a', '-m', 'release', 'v1']);
      await git(work, ['push', '--quiet', 'origin', 'refs/tags/v1']);
      const o = await (await f.source(undefined, undefined, 'v1')).poll();
      assert.equal(o.kind, 'accepted', JSON.stringify(o));
      if (o.kind === 'accepted') assert.equal(o.revision.sha, f.first);
    });
  });

test("the relay answers only git's own requests: without its token, 403 and nothing reaches the source", async (t) => {
  const f = await serveRepo(t);
  const counters = { requests: 0, packRequests: 0, bytesIn: 0 };
  const client = gitHttpClient({ url: f.server.repoUrl('desired'), auth: SOURCE_AUTH, counters });
  await withRelay(client, f.server.repoUrl('desired'), async (url, env) => {
    const [name, token] = (env['GIT_CONFIG_VALUE_0'] ?? '').split(': ');
    assert.ok(name && token, 'the token is handed to git through its environment');
    const refs = `${url}/info/refs?service=git-upload-pack`;
    const wrong = token.replace(/.$/, (c) => (c === '0' ? '1' : '0'));
    for (const headers of [{}, { [name]: 'guessed' }, { [name]: `${token}x` }, { [name]: wrong }])
      assert.equal((await fetch(refs, { headers })).status, 403);
    assert.equal(f.server.requests.length, 0, 'no request without the token went on to the source');
    const ok = await fetch(refs, { headers: { [name]: token } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /refs\/heads\/main/);
    assert.deepEqual(
      f.server.requests.map((r) => r.authorized),
      [true],
    );
  });
});
