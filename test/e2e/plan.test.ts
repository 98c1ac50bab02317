/**
 * `steward plan` as a user runs it, on real Git repositories (local and over smart HTTP, both
 * engines) and real files: what the agent would do and why not, exit codes per SPEC §12, --ref,
 * --dir, the formats and colour, and never a sensitive file's content.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../agent/cli.js';
import { createTestRepo, git, type TestRepo } from '../helpers/git-repo.js';
import { startGitServer } from '../helpers/git-server.js';
import { ENGINES, SOURCE_AUTH } from '../helpers/git-source.js';
import { harnessOnNewRepo, makeHarness } from '../helpers/harness.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

async function plan(
  configPath: string,
  args: string[] = [],
  opts: { env?: NodeJS.ProcessEnv; isTTY?: boolean } = {},
): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    ['plan', '-c', configPath, ...args],
    { out: (s) => out.push(s), err: (s) => err.push(s), ...(opts.isTTY ? { isTTY: true } : {}) },
    opts.env ?? {},
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const file = (name: string, path: string, content: string, extra = '') =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: { path: ${path}, content: ${JSON.stringify(content)}, mode: "0644" }\n${extra}`;

const setup = harnessOnNewRepo;

/** Every file under `dir` with a digest of its bytes (and its mtime): "byte-identical" made checkable. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    out[p] = createHash('sha256')
      .update(await readFile(p))
      .digest('hex');
  }
  return out;
}

test('create, update, report only and held: the action per resource and exit codes (report-only alone exits 0)', async (t) => {
  const { repo, h } = await setup(t);
  await repo.write('fleet/motd.yaml', file('motd', 'etc/motd', 'hello\nworld\n'));
  await repo.write('fleet/hosts.yaml', file('hosts', 'etc/hosts', 'x\n', 'policy: { onDrift: report }\n'));
  await repo.commit('motd and hosts');

  const first = await plan(h.configPath);
  assert.equal(first.code, 2, first.out + first.err);
  assert.match(first.out, /^\+ File\/motd \(etc\/motd\): create$/m);
  assert.match(first.out, /^ {4}\+ spec\.mode: "0644"$/m);
  assert.match(first.out, /^ {8}\+world$/m);
  assert.match(first.out, /^# File\/hosts \(etc\/hosts\): report only \(never reverted\)$/m);
  assert.match(first.out, /^Plan: 1 to create, 0 to update, 1 report only\.$/m);
  assert.match(first.out, /no .*state\.json yet/, 'says it planned from a fresh state');
  await assert.rejects(readFile(join(h.root, 'etc/motd')), { code: 'ENOENT' }, 'plan acts on nothing');

  await h.cycle();
  await h.cycle(); // the create is seen to have stuck: a tamper now is new drift, not an apply that did not stick
  const reportOnly = await plan(h.configPath);
  assert.equal(reportOnly.code, 0, 'report-only drift alone is nothing the agent would change');
  assert.match(reportOnly.out, /^Plan: 0 to create, 0 to update, 1 report only\.$/m);
  assert.match(reportOnly.out, /state: .*state\.json \(read only\): mode enforce, not frozen/);

  await writeFile(join(h.root, 'etc/motd'), 'hello\nWORLD\n');
  const update = await plan(h.configPath);
  assert.equal(update.code, 2);
  assert.match(update.out, /^~ File\/motd \(etc\/motd\): update$/m);
  assert.match(update.out, /^ {8}-WORLD\n {8}\+world$/m);

  await h.agent.freeze('incident 42', 'ops');
  const frozen = await plan(h.configPath);
  assert.equal(frozen.code, 2, 'drift held by a freeze still counts');
  assert.match(frozen.out, /^~ File\/motd \(etc\/motd\): update, held: frozen$/m);
  assert.match(frozen.out, /^Plan: 0 to create, 1 to update, 1 report only; 1 held \(frozen\)\.$/m);
  assert.match(frozen.out, /^held \(frozen\): .*steward unfreeze/m);
  const json = JSON.parse((await plan(h.configPath, ['--json'])).out);
  assert.deepEqual(
    json.drift.map((d: { name: string; action: string; held: string | null }) => [d.name, d.action, d.held]),
    [
      ['hosts', 'report-only', null],
      ['motd', 'update', 'frozen'],
    ],
  );
  assert.equal(await readFile(join(h.root, 'etc/motd'), 'utf8'), 'hello\nWORLD\n', 'still nothing acted on');
});

test('an observe-mode agent and a revision still soaking: held, exit 2', async (t) => {
  const { repo, h } = await setup(t, { mode: 'observe', guardrails: 'soak: { observeCycles: 1 }' });
  await repo.write('fleet/motd.yaml', file('motd', 'etc/motd', 'hello\n'));
  await repo.commit('motd');
  const observe = await plan(h.configPath);
  assert.equal(observe.code, 2);
  assert.match(observe.out, /^\+ File\/motd \(etc\/motd\): create, held: observe$/m);
  await h.agent.update((s) => ({ ...s, mode: 'enforce' }));
  const soak = await plan(h.configPath);
  assert.equal(soak.code, 2);
  assert.match(soak.out, /^\+ File\/motd \(etc\/motd\): create, held: soak$/m);
});

for (const engine of ENGINES)
  test(`--ref: another branch, and a commit behind the tip, over HTTP (${engine}); the state dir stays byte-identical`, async (t) => {
    const base = await mkdtemp(join(tmpdir(), 'steward-plan-ref-'));
    const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
    await repo.write('fleet/motd.yaml', file('motd', 'etc/motd', 'hello\n'));
    const old = await repo.commitAndPush('motd');
    await repo.write('fleet/motd.yaml', file('motd', 'etc/motd', 'hello again\n'));
    await repo.commitAndPush('motd again');
    const server = await startGitServer({ projectRoot: base, auth: SOURCE_AUTH });
    const h = await makeHarness({
      sourceUrl: server.repoUrl('desired'),
      sourceAuth: SOURCE_AUTH,
      sourceYaml: `engine: ${engine}`,
    });
    t.after(async () => {
      await h.close();
      await server.stop();
      await rm(base, { recursive: true, force: true });
    });
    await h.cycle();
    await featureBranch(repo);
    const before = await snapshot(h.stateDir);
    assert.ok(Object.keys(before).some((p) => p.endsWith('state.json')));

    const feature = await plan(h.configPath, ['--ref', 'feature']);
    assert.equal(feature.code, 2, feature.out + feature.err);
    assert.match(feature.out, /\(--ref feature\)/);
    assert.match(feature.out, /^\+ File\/banner \(etc\/banner\): create$/m);
    const pinned = await plan(h.configPath, ['--ref', old]);
    assert.equal(pinned.code, 2, pinned.out + pinned.err);
    assert.match(pinned.out, new RegExp(`^revision ${old.slice(0, 12)} `, 'm'));
    assert.match(pinned.out, /^ {8}-hello again\n {8}\+hello$/m);
    const missing = await plan(h.configPath, ['--ref', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /SOURCE_REF_NOT_FOUND: --ref nope: no branch or tag/);

    assert.deepEqual(await snapshot(h.stateDir), before, 'the state dir is byte-identical');
    const state = await h.agent.update((s) => s);
    assert.equal(
      state.revision?.sha,
      await git(repo.workDir, ['rev-parse', 'main']),
      'accepted revision kept',
    );
  });

/** A branch `feature` (pushed) adding a File banner. */
/** A local repository with motd applied on main and a `feature` branch made by featureBranch; its tip. */
async function onFeatureBranch(t: Parameters<typeof setup>[0]) {
  const { repo, h } = await setup(t);
  await repo.write('fleet/motd.yaml', file('motd', 'etc/motd', 'hello\n'));
  await repo.commit('motd');
  await h.cycle();
  await featureBranch(repo);
  return { repo, h, tip: await git(repo.workDir, ['rev-parse', 'feature']) };
}

async function featureBranch(repo: TestRepo): Promise<void> {
  await git(repo.workDir, ['checkout', '--quiet', '-b', 'feature']);
  await repo.write('fleet/banner.yaml', file('banner', 'etc/banner', 'welcome\n'));
  await repo.commit('banner');
  await git(repo.workDir, ['push', '--quiet', 'origin', 'HEAD:refs/heads/feature']);
  await git(repo.workDir, ['checkout', '--quiet', 'main']);
}

test('--ref on a local source: a branch and a commit id; the state dir stays byte-identical', async (t) => {
  const { h, tip } = await onFeatureBranch(t);
  const before = await snapshot(h.stateDir);
  for (const ref of ['feature', tip]) {
    const r = await plan(h.configPath, ['--ref', ref]);
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.out, /^\+ File\/banner \(etc\/banner\): create$/m);
  }
  const short = await plan(h.configPath, ['--ref', tip.slice(0, 10)]);
  assert.equal(short.code, 1);
  assert.match(short.err, /not a full commit id/);
  assert.deepEqual(await snapshot(h.stateDir), before);
});

test('--dir: a working tree with an uncommitted file, no commit needed; its errors name file:line:col', async (t) => {
  const { repo, h } = await setup(t);
  await repo.write('fleet/motd.yaml', file('motd', 'etc/motd', 'hello\n'));
  await repo.commit('motd');
  await h.cycle();
  await repo.write('fleet/new.yaml', file('new', 'etc/new', 'not committed\n'));
  const r = await plan(h.configPath, ['--dir', repo.workDir]);
  assert.equal(r.code, 2, r.out + r.err);
  assert.match(r.out, /^working tree .*: 2 managed, 1 drifted, 0 unreadable$/m);
  assert.match(r.out, /^\+ File\/new \(etc\/new\): create$/m);
  assert.ok(!r.out.includes('File/motd ('), 'the committed, converged file is not drift');

  await repo.write('fleet/bad.yaml', 'apiVersion: steward/v1\nkind: Flie\n');
  const bad = await plan(h.configPath, ['--dir', repo.workDir]);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /fleet\/bad\.yaml:2:7: unknown kind "Flie"/);
  const nowhere = await plan(h.configPath, ['--dir', join(repo.workDir, 'fleet')]);
  assert.equal(nowhere.code, 1);
  assert.match(nowhere.err, /USAGE: .*checkout of the source repository/);
});

test('--format markdown: a pull-request comment; colour on a terminal, never with NO_COLOR or --no-color', async (t) => {
  const { repo, h } = await setup(t);
  await repo.write('fleet/motd.yaml', file('motd', 'etc/motd', 'hello\n'));
  await repo.commit('motd');
  const md = await plan(h.configPath, ['--format', 'markdown'], { isTTY: true });
  assert.equal(md.code, 2);
  assert.match(md.out, /^\*\*Plan: 1 to create, 0 to update\.\*\*$/m);
  assert.match(md.out, /^\| `\+` \| `File\/motd \(etc\/motd\)` \| create \| {2}\|$/m);
  assert.match(
    md.out,
    /^```diff\n\+ spec\.mode: "0644"\n {2}spec\.content: sha256:[0-9a-f]{12} \(6 bytes\)\n@@ -0,0 \+1,1 @@\n\+hello\n```$/m,
  );
  assert.ok(!md.out.includes('\x1b'), 'no ANSI in markdown, even on a terminal');

  const ansi = (r: Run) => r.out.includes('\x1b[');
  assert.ok(ansi(await plan(h.configPath, [], { isTTY: true })), 'colour on a terminal');
  assert.ok(!ansi(await plan(h.configPath, [], { isTTY: true, env: { NO_COLOR: '1' } })), 'NO_COLOR');
  assert.ok(!ansi(await plan(h.configPath, ['--no-color'], { isTTY: true })), '--no-color');
  assert.ok(!ansi(await plan(h.configPath)), 'not a terminal');
  assert.ok(ansi(await plan(h.configPath, [], { env: { FORCE_COLOR: '1' } })), 'FORCE_COLOR');
  const bad = await plan(h.configPath, ['--format', 'yaml']);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /USAGE: --format yaml: use one of text, markdown, json/);
});

test("a sensitive file's content is in no format of plan, a diff of a plain one is", async (t) => {
  const CANARY = 'canary-9b1e-do-not-print';
  const { repo, h } = await setup(t);
  await repo.write(
    'fleet/secret.yaml',
    file('secret', 'secret.env', `TOKEN=${CANARY}\n`, 'sensitive: true\n'),
  );
  await repo.write('fleet/app.yaml', file('app', 'app.conf', 'port = 8080\n'));
  await repo.commit('secret');
  await h.cycle();
  await writeFile(join(h.root, 'secret.env'), `TOKEN=${CANARY}-tampered\n`);
  await writeFile(join(h.root, 'app.conf'), 'port = 9999\n');
  for (const args of [[], ['--format', 'markdown'], ['--json'], ['--dir', repo.workDir]]) {
    const r = await plan(h.configPath, args, { env: { FORCE_COLOR: '1' } });
    assert.equal(r.code, 2, r.out + r.err);
    assert.ok(!(r.out + r.err).includes(CANARY), `plan ${args.join(' ')} shows the secret`);
    assert.ok(r.out.includes('+port = 8080'), `plan ${args.join(' ')} shows the plain diff`);
  }
});

test('a state file that cannot be read: planned from a fresh state, and it says so', async (t) => {
  const { repo, h } = await setup(t, { mode: 'observe' });
  await repo.write('fleet/motd.yaml', file('motd', 'etc/motd', 'hello\n'));
  await repo.commit('motd');
  await h.agent.update((s) => ({ ...s, mode: 'enforce' }));
  assert.match(
    (await plan(h.configPath)).out,
    /^\+ File\/motd \(etc\/motd\): create$/m,
    'the persisted mode',
  );
  await writeFile(join(h.stateDir, 'state.json'), '{"format":"steward-state","sha256":"0","state":{}}\n');
  const r = await plan(h.configPath);
  assert.equal(r.code, 2, r.out + r.err);
  assert.match(
    r.out,
    /^state: a fresh one, .*state\.json cannot be read \(STATE_CORRUPT: the agent would not start on it\): mode observe, not frozen$/m,
  );
  assert.match(r.out, /^\+ File\/motd \(etc\/motd\): create, held: observe$/m, 'the config mode');
});

test('golden: the whole text of --ref and --dir plans (paths and the commit id normalised)', async (t) => {
  const { repo, h, tip } = await onFeatureBranch(t);
  const norm = (s: string) =>
    s
      .replaceAll(repo.workDir, '<repo>')
      .replaceAll(h.stateDir, '<state>')
      .replaceAll(tip.slice(0, 12), '<sha>');
  const body = [
    '+ File/banner (etc/banner): create',
    '    + spec.mode: "0644"',
    '    + spec.content: sha256:77f44b9024fd (8 bytes)',
    '        @@ -0,0 +1,1 @@',
    '        +welcome',
    '',
    'Plan: 1 to create, 0 to update.',
  ];
  const ref = await plan(h.configPath, ['--ref', 'feature']);
  assert.deepEqual(norm(ref.out).split('\n'), [
    'revision <sha> (--ref feature): 2 managed, 1 drifted, 0 unreadable',
    'unverified (no source.verify in the config)',
    'state: <state>/state.json (read only): mode enforce, not frozen',
    '',
    ...body,
  ]);
  await git(repo.workDir, ['checkout', '--quiet', 'feature']);
  const dir = await plan(h.configPath, ['--dir', repo.workDir]);
  assert.deepEqual(norm(dir.out).split('\n'), [
    'working tree <repo>: 2 managed, 1 drifted, 0 unreadable',
    'unverified (a working tree has no signatures)',
    'state: <state>/state.json (read only): mode enforce, not frozen',
    '',
    ...body,
  ]);
});

test('a deny window open now: held (window), exit 2; a freeze past its end plans as lifted, writing nothing', async (t) => {
  const { repo, h } = await setup(t, {
    extra: 'windows:\n  - { kind: deny, schedule: "* * * * *", duration: 1h }',
  });
  await repo.write('fleet/motd.yaml', file('motd', 'etc/motd', 'hello\n'));
  await repo.commit('motd');
  const denied = await plan(h.configPath);
  assert.equal(denied.code, 2, 'drift held by a window still counts');
  assert.match(denied.out, /^\+ File\/motd \(etc\/motd\): create, held: window$/m);

  // Ended by the time plan runs (Date.now()), still in force on the agent's injected clock (2026-01-01).
  const until = Date.UTC(2026, 5, 1);
  assert.ok(h.clock.now < until && until < Date.now());
  await h.agent.update((s) => ({ ...s, freeze: { reason: 'deploy', by: 'ops', since: h.clock.now, until } }));
  const before = await snapshot(h.stateDir);
  const lapsedFreeze = await plan(h.configPath);
  assert.match(lapsedFreeze.out, /^\+ File\/motd \(etc\/motd\): create, held: window$/m, 'not held: frozen');
  assert.deepEqual(await snapshot(h.stateDir), before, 'plan wrote nothing');
});
