/**
 * Signed desired state end to end (SPEC §10, issue 13): real keys made here
 * (ssh-keygen; GnuPG in a temporary home), real `git commit -S`, pushed to the
 * real smart-HTTP server, read by the agent on both Git engines.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PollOutcome } from '../../agent/source/source.js';
import { statusView } from '../../agent/admin/views.js';
import { buildAgent } from '../../agent/build.js';
import { main } from '../../agent/cli.js';
import { loadConfig } from '../../agent/config.js';
import { silentLogger } from '../../agent/log.js';
import { createTestRepo, git, type TestRepo } from '../helpers/git-repo.js';
import { type GitServer, startGitServer } from '../helpers/git-server.js';
import { ENGINES, SOURCE_AUTH } from '../helpers/git-source.js';
import { type Harness, makeHarness } from '../helpers/harness.js';
import {
  allowedSignersLine,
  commitSigned,
  type GpgKey,
  makeGpgKey,
  makeSshKey,
  readRawCommit,
  type Signing,
  type SshKey,
  stopGpg,
  writeRawCommit,
} from '../helpers/signing.js';

const DAY = 24 * 3600 * 1000;
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const manifest = (content: string): string =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: motd }\nspec: { path: etc/motd, content: ${JSON.stringify(content)} }\n`;

let keys: string;
let trusted: SshKey;
let stranger: SshKey;
let gpg: GpgKey;
let gpgShort: GpgKey;
let allowedSigners: string;
let openpgpFiles: string[];

before(async () => {
  keys = await mkdtemp(join(tmpdir(), 'steward-sig-keys-'));
  trusted = await makeSshKey(keys, 'ops', 'ed25519');
  stranger = await makeSshKey(keys, 'stranger', 'ed25519');
  gpg = await makeGpgKey(join(keys, 'gpg'), 'Ops <ops@test>');
  gpgShort = await makeGpgKey(join(keys, 'gpg-short'), 'Short <short@test>', '1d');
  allowedSigners = join(keys, 'allowed_signers');
  await writeFile(allowedSigners, `${allowedSignersLine('ops@test', trusted, 'namespaces="git"')}\n`);
  openpgpFiles = [join(keys, 'ops.asc'), join(keys, 'short.asc')];
  await writeFile(openpgpFiles[0]!, gpg.armoredPublic);
  await writeFile(openpgpFiles[1]!, gpgShort.armoredPublic);
});

after(async () => {
  await stopGpg(gpg.home);
  await stopGpg(gpgShort.home);
  await rm(keys, { recursive: true, force: true });
});

interface Setup {
  repo: TestRepo;
  server: GitServer;
  h: Harness;
  /** Writes the manifest, commits it as `signing` says on top of `base` (default HEAD), force-pushes; returns the sha. */
  push(content: string, signing: Signing, base?: string): Promise<string>;
}

async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  engine: string,
  verify: string | null,
): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'steward-sig-'));
  const repo = await createTestRepo({ projectRoot: dir, name: 'desired' });
  const server = await startGitServer({ projectRoot: dir, auth: SOURCE_AUTH });
  let n = 0;
  const push = async (content: string, signing: Signing, base?: string): Promise<string> => {
    if (base) await git(repo.workDir, ['reset', '--quiet', '--hard', base]);
    await repo.write('fleet/motd.yaml', manifest(content));
    const sha = await commitSigned(repo.workDir, signing, `change ${n++}`, { file: 'notes.txt' });
    await git(repo.workDir, ['push', '--quiet', '--force', 'origin', 'HEAD:refs/heads/main']);
    return sha;
  };
  // The first revision exists before the agent starts.
  await push('hello\n', { format: 'ssh', key: trusted });
  const h = await makeHarness({
    sourceUrl: server.repoUrl('desired'),
    sourceAuth: SOURCE_AUTH,
    sourceEngine: engine as 'git' | 'isomorphic',
    ...(verify ? { sourceYaml: verify } : {}),
  });
  h.clock.now = Date.now(); // the keys were made now: a verification "in 2026-01" would predate them
  t.after(async () => {
    await h.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { repo, server, h, push };
}

const strictVerify = (): string =>
  `verify: { mode: strict, ssh: ${JSON.stringify(allowedSigners)}, openpgp: ${JSON.stringify(openpgpFiles)} }`;

function assertRejected(o: PollOutcome, sha: string, reason: RegExp, key?: string): void {
  assert.equal(o.kind, 'rejected', `expected a rejection, got ${JSON.stringify(o)}`);
  if (o.kind !== 'rejected') return;
  assert.equal(o.sha, sha);
  const text = o.problems.map((p) => `${p.file}: ${p.message}`).join('\n');
  assert.match(text, /signature: /);
  assert.match(text, reason);
  assert.ok(text.includes(sha.slice(0, 12)), `the commit is named: ${text}`);
  if (key) assert.ok(text.includes(key), `the key ${key} is named: ${text}`);
}

/** A hand edit of the managed file is reverted: the last good revision is still enforced. */
async function assertEnforced(h: Harness, content: string): Promise<void> {
  const file = join(h.root, 'etc', 'motd');
  h.clock.now += 3600_000; // past the revert backoff of the previous hand edit
  await writeFile(file, 'hand edit\n');
  assert.equal((await h.cycle()).applied, 1);
  assert.equal(await readFile(file, 'utf8'), content);
  assert.equal((await h.cycle()).drifted, 0, 'the revert stuck');
}

for (const engine of ENGINES) {
  describe(`signed desired state (${engine} engine)`, () => {
    test('signed pushes apply; unsigned, unknown-key, tampered and expired ones are rejected with their own message, and the last good revision stays enforced', async (t) => {
      const { repo, h, push } = await setup(t, engine, strictVerify());
      await h.cycle();
      assert.equal((await h.cycle()).drifted, 0, 'the apply stuck');
      const good = await repo.head();
      assert.equal(h.agent.source.current?.sha, good);
      assert.equal(await readFile(join(h.root, 'etc', 'motd'), 'utf8'), 'hello\n');
      const status = statusView(h.agent);
      assert.equal(status.revision.verified, true);
      assert.equal(status.revision.signer, `ops@test ${trusted.fingerprint}`);

      const unsigned = await push('unsigned\n', { format: 'none' }, good);
      assertRejected(await h.poll(), unsigned, /unsigned: .*not signed/);
      const ev = h.events.filter((e) => e.type === 'revision_rejected').at(-1);
      assert.equal(ev?.type === 'revision_rejected' ? ev.sha : null, unsigned);
      assert.equal(ev?.type === 'revision_rejected' ? ev.reason : null, 'signature');
      await assertEnforced(h, 'hello\n');

      const unknown = await push('stranger\n', { format: 'ssh', key: stranger }, good);
      assertRejected(
        await h.poll(),
        unknown,
        /unknown-key: .*not in the allowed-signers/,
        stranger.fingerprint,
      );
      await assertEnforced(h, 'hello\n');

      // Tampered: a signed commit's message changed by hand, the old signature kept.
      const signed = await push('tampered\n', { format: 'ssh', key: trusted }, good);
      const raw = Buffer.from(await readRawCommit(repo.workDir, signed));
      const forged = await writeRawCommit(
        repo.workDir,
        Buffer.from(raw.toString('utf8').replace(/change \d+\n$/, 'totally harmless\n')),
      );
      assert.notEqual(forged, signed);
      await git(repo.workDir, ['update-ref', 'refs/heads/main', forged]);
      await git(repo.workDir, ['push', '--quiet', '--force', 'origin', 'HEAD:refs/heads/main']);
      assertRejected(await h.poll(), forged, /bad-signature: .*does not match/, trusted.fingerprint);
      await assertEnforced(h, 'hello\n');

      // Expired: a 1-day GnuPG key, and the agent's clock two days on.
      const expired = await push('expired\n', { format: 'openpgp', key: gpgShort }, good);
      const now = h.clock.now;
      h.clock.now = now + 2 * DAY;
      assertRejected(await h.poll(), expired, /expired-key: /, gpgShort.fingerprint.slice(-16));
      h.clock.now = now;
      await assertEnforced(h, 'hello\n');

      // GnuPG-signed, on top of the last good revision: applied.
      const ok = await push('signed by gpg\n', { format: 'openpgp', key: gpg }, good);
      const o = await h.poll();
      assert.equal(o.kind, 'accepted', JSON.stringify(o));
      await h.cycle();
      assert.equal(await readFile(join(h.root, 'etc', 'motd'), 'utf8'), 'signed by gpg\n');
      assert.equal(h.agent.source.current?.sha, ok);
      assert.equal(statusView(h.agent).revision.signer, gpg.fingerprint);
      const audit = (await h.agent.readAudit(100)).records.filter((r) => r.revision === ok);
      assert.deepEqual(audit.map((r) => [r.outcome, r.signer]).sort(), [
        ['applied', gpg.fingerprint],
        ['started', gpg.fingerprint],
      ]);
    });

    test('strict mode rejects an unsigned commit buried under a signed tip (deepening the shallow cache); head mode accepts it', async (t) => {
      let headFetches = 0;
      for (const mode of ['head', 'strict'] as const) {
        const { repo, h, push } = await setup(t, engine, strictVerify().replace('strict', mode));
        await h.cycle();
        const good = await repo.head();
        const buried = await push('buried\n', { format: 'none' });
        const tip = await push('signed tip\n', { format: 'ssh', key: trusted });
        const packs = h.agent.source.repo.counters.packRequests;
        const o = await h.poll();
        const fetches = h.agent.source.repo.counters.packRequests - packs;
        if (mode === 'strict') {
          assertRejected(o, tip, /unsigned: /);
          assert.ok(
            o.kind === 'rejected' && o.problems.some((p) => p.message.includes(buried.slice(0, 12))),
            'the buried commit is named',
          );
          assert.equal(h.agent.source.current?.sha, good);
          assert.ok(fetches > headFetches, `the shallow cache was deepened (${fetches} pack requests)`);
        } else {
          headFetches = fetches;
          assert.equal(o.kind, 'accepted', JSON.stringify(o));
          assert.equal(h.agent.source.current?.sha, tip);
        }
      }
    });
  });
}

test('strict mode rejects a force-push that drops the last verified commit unless allowRewrite', async (t) => {
  for (const allowRewrite of [false, true]) {
    const verify = strictVerify().replace(' }', `, allowRewrite: ${allowRewrite} }`);
    const { repo, h, push } = await setup(t, 'isomorphic', verify);
    await h.cycle();
    const good = await repo.head();
    await push('second\n', { format: 'ssh', key: trusted });
    assert.equal((await h.poll()).kind, 'accepted');
    const rewritten = await push('rewritten\n', { format: 'ssh', key: trusted }, good);
    const o = await h.poll();
    if (allowRewrite) assert.equal(o.kind, 'accepted', JSON.stringify(o));
    else assertRejected(o, rewritten, /rewrite: .*allowRewrite/);
  }
});

test('without source.verify unsigned pushes apply as before, shown as unverified', async (t) => {
  const { h, push } = await setup(t, 'git', null);
  await h.cycle();
  const unsigned = await push('unsigned\n', { format: 'none' });
  assert.equal((await h.poll()).kind, 'accepted');
  await h.cycle();
  assert.equal(h.agent.source.current?.sha, unsigned);
  assert.equal(await readFile(join(h.root, 'etc', 'motd'), 'utf8'), 'unsigned\n');
  assert.equal(statusView(h.agent).revision.verified, null);
  assert.equal(statusView(h.agent).revision.signer, null);
});

test('a restart does not restore a revision that does not verify', async (t) => {
  const { h, push } = await setup(t, 'isomorphic', null);
  await h.cycle();
  const unsigned = await push('unsigned\n', { format: 'none' });
  await h.cycle(); // accepted and persisted: no source.verify yet
  assert.equal(h.agent.source.current?.sha, unsigned);
  // The same state dir under a config that verifies: the unsigned revision is not brought back.
  const verified = await makeHarness({
    sourceUrl: h.config.source.url,
    sourceAuth: SOURCE_AUTH,
    sourceEngine: 'isomorphic', // the same object cache as the first agent's
    sourceYaml: strictVerify(),
  });
  t.after(() => verified.close());
  await rm(verified.stateDir, { recursive: true, force: true });
  await cp(h.stateDir, verified.stateDir, { recursive: true });
  verified.clock.now = Date.now();
  await verified.restart();
  assert.equal(verified.agent.currentState.revision?.sha, unsigned, 'the state names the unsigned revision');
  assert.equal(verified.agent.source.current, null);
});

test('steward plan names the signer; plan --verify gates CI on the signatures: exit 0 signed, 1 with the reason', async (t) => {
  const { h, push } = await setup(t, 'isomorphic', strictVerify());
  const run = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s) }, {});
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  const signer = `ops@test ${trusted.fingerprint}`;
  const planned = await run(['plan', '-c', h.configPath]);
  assert.match(planned.out, new RegExp(`^signed by ${esc(signer)}$`, 'm'));
  const json = await run(['plan', '-c', h.configPath, '--json']);
  assert.equal(JSON.parse(json.out).signer, signer);
  assert.equal(JSON.parse(json.out).verified, true);
  const ok = await run(['plan', '--verify', '-c', h.configPath]);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, new RegExp(`signed by ${esc(signer)}`));

  const validated = await run(['validate', '--verify', '-c', h.configPath]);
  assert.equal(validated.code, 0, validated.err);
  assert.match(validated.out, new RegExp(`signed by ${esc(signer)}`), 'validate --verify is the same check');

  const unsigned = await push('unsigned\n', { format: 'none' });
  for (const command of ['plan', 'validate']) {
    const bad = await run([command, '--verify', '-c', h.configPath]);
    assert.equal(bad.code, 1, command);
    assert.match(bad.err, new RegExp(`commit ${unsigned.slice(0, 12)}.*signature: unsigned`), command);
  }
});

test('an OpenPGP key file that looks armored but cannot be read stops the agent at start (CONFIG_INVALID)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steward-sig-bad-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    join(dir, 'broken.asc'),
    '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n',
  );
  await writeFile(
    join(dir, 'steward.yaml'),
    `source: { url: ${JSON.stringify(keys)}, verify: { openpgp: [broken.asc] } }\nstate: { dir: state }\n`,
  );
  const agent = buildAgent(await loadConfig(join(dir, 'steward.yaml')), silentLogger);
  await assert.rejects(agent.init(), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'CONFIG_INVALID');
    assert.match(e.message, /broken\.asc:1:1: not an armored OpenPGP public key/);
    return true;
  });
});
