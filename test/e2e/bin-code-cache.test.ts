/**
 * bin/steward.js runs `plan` and `validate` from the one-file bundle (dist/bundle/one-shot.cjs) as a vm.Script
 * with V8's code cache of the command's last run, kept in $STEWARD_CODE_CACHE (else steward-code-cache-<uid>
 * in the temporary directory). Built install, real processes: what plan prints that way is what the CLI from
 * source prints; the cache is written once and then used, replaced when V8 refuses it, never written by a
 * run that failed, and never read from or written to a directory someone else could write.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTestRepo } from '../helpers/git-repo.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'steward.js');

function scratch(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'steward-codecache-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function steward(args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

/** A folder `validate` accepts: one File manifest. */
function manifests(dir: string): string {
  const m = join(dir, 'manifests');
  mkdirSync(m);
  writeFileSync(
    join(m, 'a.yaml'),
    'apiVersion: steward/v1\nkind: File\nmetadata: { name: a }\nspec: { path: a.conf, content: "a\\n" }\n',
  );
  return m;
}

const files = (dir: string): string[] => readdirSync(dir).sort();

test('plan from the bundle prints what the CLI from source prints; its second start uses the cache the first wrote', async (t) => {
  const dir = scratch(t);
  const repo = await createTestRepo({ projectRoot: join(dir, 'git'), name: 'desired' });
  for (let i = 0; i < 3; i++)
    await repo.write(
      `fleet/f${i}.yaml`,
      `apiVersion: steward/v1\nkind: File\nmetadata: { name: f${i} }\nspec: { path: f${i}.conf, content: "f${i}\\n" }\n`,
    );
  await repo.commit('three files');
  mkdirSync(join(dir, 'managed'));
  writeFileSync(join(dir, 'managed', 'f0.conf'), 'hand edit\n');
  writeFileSync(join(dir, 'managed', 'f1.conf'), 'f1\n');
  const config = join(dir, 'steward.yaml');
  writeFileSync(
    config,
    `source: { url: ${JSON.stringify(repo.workDir)}, path: fleet }\nproviders: { file: { root: ${JSON.stringify(join(dir, 'managed'))} } }\nstate: { dir: ${JSON.stringify(join(dir, 'state'))} }\n`,
  );
  const cache = join(dir, 'cache');
  const env = { STEWARD_CODE_CACHE: cache, NO_COLOR: '1' };

  const first = steward(['plan', '-c', config], env);
  assert.equal(first.status, 2, first.stderr);
  const written = files(cache);
  assert.equal(written.length, 1, `one cache after the first plan: ${written}`);
  assert.match(
    written[0]!,
    new RegExp(
      `^plan-[0-9a-f]{8}-${process.version.replace(/\./g, '\\.')}-${process.arch}-[0-9a-f]{16}(-\\d+)+\\.v8$`,
    ),
  );
  const before = statSync(join(cache, written[0]!));
  assert.ok(
    before.size > 100_000,
    `the cache holds the functions plan ran, not only the top level (${before.size} bytes)`,
  );
  assert.equal(before.mode & 0o777, 0o600);
  assert.equal(statSync(cache).mode & 0o777, 0o700);

  const second = steward(['plan', '-c', config], env);
  assert.equal(second.status, 2, second.stderr);
  assert.equal(second.stdout, first.stdout);
  const after = statSync(join(cache, written[0]!));
  assert.deepEqual(
    [after.ino, after.mtimeMs],
    [before.ino, before.mtimeMs],
    'a cache V8 accepted is not written again',
  );
  assert.deepEqual(files(cache), written);

  const fromSource = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'cli-entry.ts'), 'plan', '-c', config],
    { encoding: 'utf8', cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } },
  );
  assert.equal(fromSource.status, 2, fromSource.stderr);
  assert.equal(first.stdout, fromSource.stdout);
  assert.match(first.stdout, /f0/);
});

test('a cache V8 refuses is replaced; a failed run, a --help or STEWARD_CODE_CACHE=off writes none', (t) => {
  const dir = scratch(t);
  const m = manifests(dir);
  const cache = join(dir, 'cache');
  const env = { STEWARD_CODE_CACHE: cache };

  assert.equal(steward(['validate', '/nonexistent/manifests'], env).status, 1);
  assert.deepEqual(files(cache), [], 'a failed run leaves no cache');
  assert.equal(steward(['validate', '--help'], env).status, 0);
  assert.deepEqual(files(cache), [], '--help leaves no cache');

  const ok = steward(['validate', m], env);
  assert.equal(ok.status, 0, ok.stderr);
  const [name] = files(cache);
  assert.match(name ?? '', /^validate-[0-9a-f]{8}-v\d/, `${files(cache)}`);
  const garbage = Buffer.alloc(statSync(join(cache, name!)).size, 7);
  writeFileSync(join(cache, name!), garbage);
  const again = steward(['validate', m], env);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.stdout, ok.stdout);
  assert.notDeepEqual(readFileSync(join(cache, name!)), garbage, 'the refused cache was written anew');
  assert.deepEqual(files(cache), [name], 'renamed into place: no temp file left');

  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const off = steward(['validate', m], { STEWARD_CODE_CACHE: 'off', TMPDIR: tmp });
  assert.equal(off.status, 0, off.stderr);
  // Only steward's: Node 22+ keeps its own compile cache (of bin/steward.js) in TMPDIR too.
  const ours = () => files(tmp).filter((f) => f.startsWith('steward-'));
  assert.deepEqual(ours(), [], 'off: no cache directory, no cache');
  const byDefault = steward(['validate', m], { STEWARD_CODE_CACHE: '', TMPDIR: tmp });
  assert.equal(byDefault.status, 0, byDefault.stderr);
  assert.deepEqual(ours(), [`steward-code-cache-${process.getuid!()}`], 'unset: one per user in TMPDIR');
});

test('a cache directory another user could write, a symlink, or one owned by someone else is neither read nor written', (t) => {
  const dir = scratch(t);
  const m = manifests(dir);

  // A good cache, made where it is allowed: its name is what an unsafe directory would be asked for.
  const good = join(dir, 'good');
  assert.equal(steward(['validate', m], { STEWARD_CODE_CACHE: good }).status, 0);
  const [name] = files(good);
  assert.ok(name);

  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const r = steward(['validate', m], { STEWARD_CODE_CACHE: open });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(files(open), [], 'a world-writable directory gets no cache');
  chmodSync(open, 0o770);
  assert.equal(steward(['validate', m], { STEWARD_CODE_CACHE: open }).status, 0);
  assert.deepEqual(files(open), [], 'nor a group-writable one');

  const target = join(dir, 'target');
  mkdirSync(target, { mode: 0o700 });
  symlinkSync(target, join(dir, 'link'));
  assert.equal(steward(['validate', m], { STEWARD_CODE_CACHE: join(dir, 'link') }).status, 0);
  assert.deepEqual(files(target), [], 'a symlink is not followed to a cache');

  // Planted garbage under the very name would make V8 refuse it, and the run would write a new one: nothing
  // is written, so nothing there was taken for a cache.
  writeFileSync(join(open, name!), 'planted');
  chmodSync(open, 0o777);
  assert.equal(steward(['validate', m], { STEWARD_CODE_CACHE: open }).status, 0);
  assert.equal(readFileSync(join(open, name!), 'utf8'), 'planted');

  if (process.getuid!() === 0) {
    const theirs = join(dir, 'theirs');
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, 65534, 65534);
    assert.equal(steward(['validate', m], { STEWARD_CODE_CACHE: theirs }).status, 0);
    assert.deepEqual(files(theirs), [], "another user's directory gets no cache (even for root)");
  }
});

test("two installs, or other runtime flags, keep a cache each; a new build of one replaces that install's cache only", (t) => {
  const dir = scratch(t);
  const m = manifests(dir);
  const home = join(dir, 'install');
  for (const part of ['bin', 'dist', 'package.json'])
    cpSync(join(ROOT, part), join(home, part), { recursive: true, preserveTimestamps: true });
  symlinkSync(join(ROOT, 'node_modules'), join(home, 'node_modules'));
  const cache = join(dir, 'cache');
  const validate = (bin: string) => {
    const r = spawnSync(process.execPath, [bin, 'validate', m], {
      encoding: 'utf8',
      env: { ...process.env, STEWARD_CODE_CACHE: cache },
    });
    assert.equal(r.status, 0, r.stderr);
  };
  validate(BIN);
  const [ours] = files(cache);
  validate(join(home, 'bin', 'steward.js'));
  const both = files(cache);
  assert.equal(both.length, 2, `${both}`);
  const theirs = both.find((f) => f !== ours)!;
  validate(BIN);
  assert.deepEqual(files(cache), both, 'neither replaced the other');
  // Other V8 flags: a cache of its own (V8 refuses one made under other flags), the others kept.
  const flagged = spawnSync(process.execPath, [BIN, 'validate', m], {
    encoding: 'utf8',
    env: { ...process.env, STEWARD_CODE_CACHE: cache, NODE_OPTIONS: '--max-old-space-size=3000' },
  });
  assert.equal(flagged.status, 0, flagged.stderr);
  const withFlags = files(cache).filter((f) => !both.includes(f));
  assert.equal(withFlags.length, 1, `${files(cache)}`);
  rmSync(join(cache, withFlags[0]!));

  // A rebuild of the copy (its bundle newer): its cache is named anew and its old one goes; ours stays.
  const later = new Date(Date.now() + 60_000);
  utimesSync(join(home, 'dist', 'bundle', 'one-shot.cjs'), later, later);
  validate(join(home, 'bin', 'steward.js'));
  const now = files(cache);
  assert.equal(now.length, 2, `${now}`);
  assert.ok(now.includes(ours!), 'our cache is still there');
  assert.ok(!now.includes(theirs), "the copy's old cache is gone");
});
