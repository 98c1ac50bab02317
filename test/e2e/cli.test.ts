/** The CLI as a user runs it: the compiled-free entry point `main()` in-process, and the real bin once. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../agent/cli.js';
import { createTestRepo } from '../helpers/git-repo.js';
import { makeHarness } from '../helpers/harness.js';
import { contentReplace } from '../helpers/content-op.js';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s) }, {});
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const motd = (content: string) =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: motd }\nspec: { path: etc/motd, content: ${JSON.stringify(content)} }\n`;

test('plan: exit 0 without drift, 2 with drift (and a stable --json), 1 on error; it never changes anything', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-cli-'));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  const h = await makeHarness({ sourceUrl: repo.workDir });
  t.after(async () => {
    await h.close();
    await rm(base, { recursive: true, force: true });
  });
  await repo.write('fleet/motd.yaml', motd('hello\n'));
  const sha = await repo.commit('motd');

  const missing = await run(['plan', '-c', h.configPath]);
  assert.equal(missing.code, 2);
  assert.match(missing.out, /1 managed, 1 drifted/);
  assert.match(missing.out, /^\+ File\/motd \(etc\/motd\): create$/m);
  await assert.rejects(readFile(join(h.root, 'etc/motd')), { code: 'ENOENT' }, 'plan acts on nothing');

  await h.cycle();
  const clean = await run(['plan', '-c', h.configPath, '--json']);
  assert.equal(clean.code, 0);
  const { revision, signer, verified, managed, drifted, drift: none, errors } = JSON.parse(clean.out);
  assert.deepEqual(
    { revision, signer, verified, managed, drifted, drift: none, errors },
    {
      revision: sha,
      signer: null,
      verified: null,
      managed: 1,
      drifted: 0,
      drift: [],
      errors: [],
    },
  );

  await writeFile(join(h.root, 'etc/motd'), 'edited\n');
  const drift = await run(['plan', '-c', h.configPath, '--json']);
  assert.equal(drift.code, 2);
  const entries = JSON.parse(drift.out).drift as Array<Record<string, unknown>>;
  assert.deepEqual(
    entries.map(({ kind, name, id, patch }) => ({ kind, name, id, patch })),
    [
      {
        kind: 'File',
        name: 'motd',
        id: 'etc/motd',
        patch: [contentReplace('edited\n', 'hello\n', '@@ -1,1 +1,1 @@\n-edited\n+hello\n')],
      },
    ],
  );
  assert.equal(await readFile(join(h.root, 'etc/motd'), 'utf8'), 'edited\n');

  const noConfig = await run(['plan', '-c', join(base, 'nope.yaml')]);
  assert.equal(noConfig.code, 1);
  assert.match(noConfig.err, /CONFIG_READ/);
});

test('plan on a bad revision exits 1 and lists every problem', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-cli-'));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  const h = await makeHarness({ sourceUrl: repo.workDir });
  t.after(async () => {
    await h.close();
    await rm(base, { recursive: true, force: true });
  });
  await repo.write('fleet/motd.yaml', motd('x').replace('kind: File', 'kind: Flie'));
  await repo.commit('typo');
  const r = await run(['plan', '-c', h.configPath]);
  assert.equal(r.code, 1);
  assert.match(r.err, /fleet\/motd\.yaml:2:7: unknown kind "Flie"/);
  assert.match(r.err, /REVISION_REJECTED/);
});

test('validate: exit 0 for the examples, 1 with file:line:col lines for bad ones', async (t) => {
  const ok = await run(['validate', 'examples/quickstart/fleet']);
  assert.equal(ok.code, 0, ok.out + ok.err);
  assert.match(ok.err, /ok: 5 resource\(s\) in 3 file\(s\)/);

  const dir = await mkdtemp(join(tmpdir(), 'steward-validate-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'a.yaml'), motd('x'));
  await writeFile(join(dir, 'sub/b.yml'), `${motd('y')}---\nkind: Nope\n`);
  await writeFile(join(dir, 'c.yaml'), 'a: [\n');
  const bad = await run(['validate', dir]);
  assert.equal(bad.code, 1);
  const lines = bad.out.split('\n');
  assert.ok(
    lines.every((l) => /^[^:]+:\d+:\d+: .+/.test(l)),
    bad.out,
  );
  assert.ok(lines.some((l) => /c\.yaml:2:1: invalid YAML/.test(l)));
  assert.ok(
    lines.some((l) => /sub\/b\.yml:3:19: duplicate File\/motd: already defined at .*a\.yaml:1:1/.test(l)),
    bad.out,
  );
  assert.ok(
    lines.some((l) => /sub\/b\.yml:6:7: unknown kind "Nope"/.test(l)),
    bad.out,
  );
});

test('a config with an unknown key is refused with file:line:col, before anything runs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steward-cfg-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'steward.yaml');
  await writeFile(cfg, 'source:\n  url: /nowhere\nreconcile:\n  intreval: 5s\n');
  const r = await run(['run', '-c', cfg]);
  assert.equal(r.code, 1);
  assert.match(r.err, /CONFIG_INVALID/);
  assert.match(r.err, /steward\.yaml:4:3: .*reconcile\.intreval.*did you mean "interval"/);
  await assert.rejects(readFile(join(dir, 'state', 'state.json')), { code: 'ENOENT' });
});

test('usage errors and version', async () => {
  assert.equal((await run(['frobnicate'])).code, 1);
  assert.equal((await run(['plan', '--bogus'])).code, 1);
  const v = await run(['version']);
  assert.equal(v.code, 0);
  assert.match(v.out, /^steward \d+\.\d+\.\d+/);
});

test('the built bin runs (what `npm ci` produces)', async () => {
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['bin/steward.js', 'version'], (e, stdout, stderr) =>
      e ? reject(new Error(stderr)) : resolve(stdout),
    ),
  );
  assert.match(out, /^steward \d+\.\d+\.\d+/);
});
