/**
 * End to end over a REAL `git http-backend` smart-HTTP server with Basic auth:
 * the agent's Git source (each engine: isomorphic-git and native git, protocol v1) polls, fetches only
 * what moved, rejects bad revisions as a whole while enforcing the last good
 * one, survives a broken or dead remote and a restart.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import type { AgentEvent } from '../../agent/events.js';
import type { PollOutcome } from '../../agent/source/source.js';
import { createTestRepo, git, type TestRepo } from '../helpers/git-repo.js';
import { type GitServer, startGitServer } from '../helpers/git-server.js';
import { ENGINES } from '../helpers/git-source.js';
import type { EngineKind } from '../../agent/source/engine.js';
import { type Harness, makeHarness } from '../helpers/harness.js';

const AUTH = { username: 'steward', password: 'pa55-W0rd-s3cret' };

/** One File manifest document. */
function fileManifest(name: string, path: string, content: string, mode = '0644'): string {
  return [
    'apiVersion: steward/v1',
    'kind: File',
    `metadata: { name: ${name} }`,
    `spec: { path: ${path}, content: ${JSON.stringify(content)}, mode: "${mode}" }`,
    '',
  ].join('\n');
}

interface Fixture {
  dir: string;
  server: GitServer;
  repo: TestRepo;
  h: Harness;
  /** The sha of the initial (good) commit. */
  first: string;
}

interface SetupOptions {
  /** Password the agent uses (default: the right one). */
  password?: string;
  headPointsTo?: string;
  /** Files of the initial commit (default: fleet/motd.yaml with "hello\n"). */
  files?: Record<string, string>;
  /** Files to put under the managed root before the agent starts. */
  managed?: Record<string, string>;
}

/** A served repo with one pushed commit, an auth-protected server, and an agent harness on it; all cleaned up after the test. */
async function setup(engine: EngineKind, t: TestContext, opts: SetupOptions = {}): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'steward-e2e-http-'));
  const projectRoot = join(dir, 'srv');
  await mkdir(projectRoot);
  const repoOpts: Parameters<typeof createTestRepo>[0] = { projectRoot, name: 'desired' };
  if (opts.headPointsTo !== undefined) repoOpts.headPointsTo = opts.headPointsTo;
  const repo = await createTestRepo(repoOpts);
  const files = opts.files ?? { 'fleet/motd.yaml': fileManifest('motd', 'etc/motd', 'hello\n') };
  for (const [p, text] of Object.entries(files)) await repo.write(p, text);
  const first = await repo.commitAndPush('initial');
  const server = await startGitServer({ projectRoot, auth: AUTH });
  let h: Harness | undefined;
  t.after(async () => {
    await h?.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });
  h = await makeHarness({
    sourceUrl: server.repoUrl('desired'),
    sourceAuth: { username: AUTH.username, password: opts.password ?? AUTH.password },
    sourceEngine: engine,
  });
  for (const [p, text] of Object.entries(opts.managed ?? {})) {
    await mkdir(dirname(join(h.root, p)), { recursive: true });
    await writeFile(join(h.root, p), text);
  }
  return { dir, server, repo, h, first };
}

const read = (h: Harness, p: string): Promise<string> => readFile(join(h.root, p), 'utf8');
const handEdit = (h: Harness, p: string, text: string): Promise<void> => writeFile(join(h.root, p), text);
const count = (h: Harness, type: AgentEvent['type']): number =>
  h.events.filter((e) => e.type === type).length;

function assertAccepted(
  o: PollOutcome,
  sha: string,
): asserts o is Extract<PollOutcome, { kind: 'accepted' }> {
  assert.equal(o.kind, 'accepted', `expected accepted, got ${JSON.stringify(o)}`);
  if (o.kind === 'accepted') assert.equal(o.revision.sha, sha);
}

function assertRejected(o: PollOutcome): asserts o is Extract<PollOutcome, { kind: 'rejected' }> {
  assert.equal(o.kind, 'rejected', `expected rejected, got ${JSON.stringify(o)}`);
}

function assertError(o: PollOutcome): asserts o is Extract<PollOutcome, { kind: 'error' }> {
  assert.equal(o.kind, 'error', `expected error, got ${JSON.stringify(o)}`);
}

/**
 * Accepts the first revision, enforces it, and runs one more cycle that sees
 * it converged (an apply is only verified by the next observation; a drift
 * seen right after an apply counts as "did not stick" and backs off).
 */
async function firstCycle(f: Fixture): Promise<void> {
  assertAccepted(await f.h.poll(), f.first);
  const report = await f.h.cycle();
  assert.equal(report.revision, f.first);
  assert.equal(report.applied, 1);
  assert.equal(await read(f.h, 'etc/motd'), 'hello\n');
  const verify = await f.h.cycle();
  assert.equal(verify.drifted, 0);
}

for (const engine of ENGINES)
  describe(engine, () => {
    test('first poll accepts the revision and a cycle creates the files', async (t) => {
      const f = await setup(engine, t, {
        files: {
          'fleet/motd.yaml': fileManifest('motd', 'etc/motd', 'hello\n'),
          'fleet/app.yaml': `${fileManifest('app-conf', 'etc/app/app.conf', 'port=8080\n', '0600')}---\n${fileManifest('issue', 'etc/issue', 'welcome\n')}`,
        },
      });
      const o = await f.h.poll();
      assertAccepted(o, f.first);
      assert.deepEqual(o.revision.resources.map((r) => r.key).sort(), [
        'File/app-conf',
        'File/issue',
        'File/motd',
      ]);
      assert.equal(count(f.h, 'revision_accepted'), 1);
      assert.ok(f.server.packRequests() >= 1, 'the first revision was downloaded');

      const report = await f.h.cycle();
      assert.equal(report.revision, f.first);
      assert.equal(report.managed, 3);
      assert.equal(report.applied, 3);
      assert.equal(await read(f.h, 'etc/motd'), 'hello\n');
      assert.equal(await read(f.h, 'etc/app/app.conf'), 'port=8080\n');
      assert.equal(await read(f.h, 'etc/issue'), 'welcome\n');

      // Converged: the next cycle changes nothing.
      const again = await f.h.cycle();
      assert.equal(again.drifted, 0);
      assert.equal(again.applied, 0);
    });

    test('a new pushed commit is picked up by the next poll and applied', async (t) => {
      const f = await setup(engine, t);
      await firstCycle(f);
      await f.repo.write('fleet/motd.yaml', fileManifest('motd', 'etc/motd', 'hello, world\n'));
      const second = await f.repo.commitAndPush('new motd');
      assert.equal(second, await f.repo.head());
      f.server.clearRequests();

      const o = await f.h.poll();
      assertAccepted(o, second);
      assert.ok(f.server.packRequests() >= 1, 'the new commit was fetched');
      assert.equal(f.h.agent.source.current?.sha, second);

      const report = await f.h.cycle();
      assert.equal(report.revision, second);
      assert.equal(report.applied, 1);
      assert.equal(await read(f.h, 'etc/motd'), 'hello, world\n');
    });

    test('an unchanged ref costs one info/refs request and no pack download', async (t) => {
      const f = await setup(engine, t);
      await firstCycle(f);
      const counters = f.h.agent.source.repo.counters;
      const before = { ...counters };
      f.server.clearRequests();

      const o = await f.h.poll();
      assert.deepEqual(o, { kind: 'unchanged', sha: f.first });
      assert.equal(f.server.packRequests(), 0);
      assert.equal(f.server.requests.length, 1);
      const [only] = f.server.requests;
      assert.equal(only?.method, 'GET');
      assert.equal(only?.path, '/desired.git/info/refs');
      assert.equal(only?.service, 'git-upload-pack');
      assert.equal(only?.status, 200);
      assert.equal(counters.requests - before.requests, 1);
      assert.equal(counters.packRequests - before.packRequests, 0);
      assert.ok(counters.bytesIn > before.bytesIn, 'the advertisement was counted');
      // The advertisement is small: nothing like a pack was read.
      assert.ok(counters.bytesIn - before.bytesIn < 2048, `read ${counters.bytesIn - before.bytesIn} bytes`);

      // Several more polls and cycles: still no pack.
      await f.h.cycle();
      await f.h.cycle();
      assert.equal(f.server.packRequests(), 0);
      assert.equal(counters.packRequests - before.packRequests, 0);
      assert.equal(count(f.h, 'revision_accepted'), 1);
    });

    test('credentials are sent up front: no request is ever answered 401', async (t) => {
      const f = await setup(engine, t);
      await firstCycle(f);
      await f.repo.write('fleet/motd.yaml', fileManifest('motd', 'etc/motd', 'v2\n'));
      const second = await f.repo.commitAndPush('v2');
      assertAccepted(await f.h.poll(), second);
      await f.h.cycle();
      assert.ok(f.server.requests.length >= 4);
      for (const r of f.server.requests) {
        assert.equal(r.authorized, true, `${r.method} ${r.path} went without credentials`);
        assert.notEqual(r.status, 401);
      }
    });

    interface BrokenCase {
      name: string;
      files: Record<string, string>;
      problems: Array<{ file: string; line: number; col: number; message: RegExp }>;
    }

    const BROKEN: BrokenCase[] = [
      {
        name: 'malformed YAML',
        files: {
          'fleet/motd.yaml':
            'apiVersion: steward/v1\nkind: File\nmetadata:\n  name: motd\n spec: { path: etc/motd }\n',
        },
        problems: [{ file: 'fleet/motd.yaml', line: 5, col: 2, message: /invalid YAML: bad indentation/ }],
      },
      {
        name: 'an unknown kind',
        files: {
          'fleet/motd.yaml': fileManifest('motd', 'etc/motd', 'hello\n'),
          'fleet/web.yaml': `${fileManifest('web', 'etc/web', 'w\n')}---\napiVersion: steward/v1\nkind: Fiel\nmetadata: { name: typo }\nspec: { path: etc/typo }\n`,
        },
        problems: [{ file: 'fleet/web.yaml', line: 7, col: 7, message: /unknown kind "Fiel"/ }],
      },
      {
        name: 'a duplicate (kind, name)',
        files: {
          'fleet/motd.yaml': fileManifest('motd', 'etc/motd', 'hello\n'),
          'fleet/z-more.yaml': `# another motd\n${fileManifest('motd', 'etc/motd2', 'dup\n')}`,
        },
        problems: [
          {
            file: 'fleet/z-more.yaml',
            line: 4,
            col: 19,
            message: /duplicate File\/motd: already defined at fleet\/motd\.yaml:1:1/,
          },
        ],
      },
    ];

    for (const c of BROKEN) {
      test(`a commit with ${c.name} is rejected with positions; the last good revision stays enforced; a fix is accepted`, async (t) => {
        const f = await setup(engine, t);
        await firstCycle(f);

        await f.repo.remove('fleet');
        for (const [p, text] of Object.entries(c.files)) await f.repo.write(p, text);
        const bad = await f.repo.commitAndPush(`broken: ${c.name}`);
        const o = await f.h.poll();
        assertRejected(o);
        assert.equal(o.sha, bad);
        assert.equal(o.problems.length, c.problems.length, JSON.stringify(o.problems));
        c.problems.forEach((want, i) => {
          const got = o.problems[i];
          assert.ok(got);
          assert.deepEqual(
            { file: got.file, line: got.line, col: got.col },
            { file: want.file, line: want.line, col: want.col },
            got.message,
          );
          assert.match(got.message, want.message);
        });
        assert.equal(count(f.h, 'revision_rejected'), 1);
        const ev = f.h.events.find((e) => e.type === 'revision_rejected');
        assert.ok(ev?.type === 'revision_rejected' && ev.sha === bad);
        assert.equal(f.h.agent.source.current?.sha, f.first);
        assert.equal(f.h.agent.source.rejected?.sha, bad);

        // Polling again with nothing new: no second event, no second download.
        f.server.clearRequests();
        assert.deepEqual(await f.h.poll(), { kind: 'unchanged', sha: bad });
        assert.equal(f.server.packRequests(), 0);
        assert.equal(count(f.h, 'revision_rejected'), 1);

        // The OLD revision keeps being enforced.
        await handEdit(f.h, 'etc/motd', 'hacked\n');
        const report = await f.h.cycle();
        assert.equal(report.revision, f.first);
        assert.equal(report.applied, 1);
        assert.equal(await read(f.h, 'etc/motd'), 'hello\n');
        assert.equal(count(f.h, 'revision_rejected'), 1);

        // A fixed commit is accepted and enforced.
        await f.repo.remove('fleet');
        await f.repo.write('fleet/motd.yaml', fileManifest('motd', 'etc/motd', 'fixed\n'));
        const fixed = await f.repo.commitAndPush('fix');
        assertAccepted(await f.h.poll(), fixed);
        assert.equal(f.h.agent.source.rejected, null);
        const after = await f.h.cycle();
        assert.equal(after.revision, fixed);
        assert.equal(await read(f.h, 'etc/motd'), 'fixed\n');
      });
    }

    test('a wrong password: SOURCE_UNREACHABLE naming authentication, password never shown, files untouched', async (t) => {
      const wrong = 'Wr0ng-pa55word-xyz';
      const f = await setup(engine, t, { password: wrong, managed: { 'etc/motd': 'local\n' } });
      const o = await f.h.poll();
      assertError(o);
      assert.equal(o.error.code, 'SOURCE_UNREACHABLE');
      assert.match(o.error.message, /authentication/i);
      assert.match(o.error.message, /401/);
      for (const secret of [
        wrong,
        AUTH.password,
        Buffer.from(`${AUTH.username}:${wrong}`).toString('base64'),
      ]) {
        assert.ok(!o.error.message.includes(secret), `the message leaks a secret: ${o.error.message}`);
        assert.ok(!JSON.stringify(o.error.details).includes(secret));
        assert.ok(!JSON.stringify(f.h.events).includes(secret));
      }
      assert.equal(count(f.h, 'source_unreachable'), 1);
      assert.equal(f.server.packRequests(), 0);
      assert.ok(f.server.requests.every((r) => !r.authorized && r.status === 401));
      // No good revision: no cycle may run, nothing on disk changes.
      await assert.rejects(f.h.cycle(), /no cycle ran/);
      assert.equal(await read(f.h, 'etc/motd'), 'local\n');
      assert.equal(f.h.agent.source.current, null);
      assert.equal(count(f.h, 'source_unreachable'), 1);
    });

    test('a broken server (503): one source_unreachable, cycles go on with the last good revision, one source_recovered', async (t) => {
      const f = await setup(engine, t);
      await firstCycle(f);
      f.server.failWith(503);
      for (let i = 0; i < 3; i++) {
        const o = await f.h.poll();
        assertError(o);
        assert.equal(o.error.code, 'SOURCE_UNREACHABLE');
        assert.match(o.error.message, /503/);
        assert.ok(!o.error.message.includes(AUTH.password));
      }
      assert.equal(count(f.h, 'source_unreachable'), 1);
      assert.equal(f.h.agent.source.current?.sha, f.first);

      await handEdit(f.h, 'etc/motd', 'hacked\n');
      const report = await f.h.cycle(); // its poll fails too
      assert.equal(report.revision, f.first);
      assert.equal(await read(f.h, 'etc/motd'), 'hello\n');
      assert.equal(count(f.h, 'source_unreachable'), 1);
      assert.equal(count(f.h, 'source_recovered'), 0);

      f.server.failWith(null);
      assert.deepEqual(await f.h.poll(), { kind: 'unchanged', sha: f.first });
      assert.deepEqual(await f.h.poll(), { kind: 'unchanged', sha: f.first });
      assert.equal(count(f.h, 'source_recovered'), 1);
      const recovered = f.h.events.find((e) => e.type === 'source_recovered');
      assert.ok(recovered?.type === 'source_recovered' && recovered.sha === f.first);
      assert.equal(f.h.agent.source.lastError, null);
    });

    test('a stopped server (connection refused): one source_unreachable, cycles go on with the last good revision', async (t) => {
      const f = await setup(engine, t);
      await firstCycle(f);
      await f.server.stop();
      for (let i = 0; i < 3; i++) {
        const o = await f.h.poll();
        assertError(o);
        assert.equal(o.error.code, 'SOURCE_UNREACHABLE');
        // The first request may find its kept-alive socket closed ("socket hang up"); later ones are refused.
        assert.match(o.error.message, i === 0 ? /ECONNREFUSED|socket hang up|ECONNRESET/ : /ECONNREFUSED/);
      }
      assert.equal(count(f.h, 'source_unreachable'), 1);

      await handEdit(f.h, 'etc/motd', 'hacked\n');
      const report = await f.h.cycle();
      assert.equal(report.revision, f.first);
      assert.equal(await read(f.h, 'etc/motd'), 'hello\n');
      assert.equal(count(f.h, 'source_unreachable'), 1);
      assert.equal(count(f.h, 'source_recovered'), 0);
    });

    test('a remote whose HEAD names a missing branch is fetched fine', async (t) => {
      const f = await setup(engine, t, { headPointsTo: 'does-not-exist' });
      await firstCycle(f);
      await f.repo.write('fleet/motd.yaml', fileManifest('motd', 'etc/motd', 'second\n'));
      const second = await f.repo.commitAndPush('second');
      assertAccepted(await f.h.poll(), second);
      await f.h.cycle();
      assert.equal(await read(f.h, 'etc/motd'), 'second\n');
    });

    test('only *.yaml / *.yml under source.path are read, nested folders included', async (t) => {
      const broken = 'kind: [this is not\n  valid: yaml\n';
      const f = await setup(engine, t, {
        files: {
          'fleet/motd.yaml': fileManifest('motd', 'etc/motd', 'hello\n'),
          'fleet/web/deep/site.yml': fileManifest('site', 'srv/site.conf', 'site\n'),
          'fleet/web/UPPER.YAML': fileManifest('upper', 'srv/upper', 'upper\n'),
          'fleet/README.md': broken,
          'fleet/notes.txt': broken,
          'fleet/web/site.yaml.bak': broken,
          'other/bad.yaml': broken,
          'fleetish/bad.yaml': broken,
          'bad.yml': broken,
        },
      });
      const o = await f.h.poll();
      assertAccepted(o, f.first);
      assert.deepEqual(o.revision.resources.map((r) => r.key).sort(), [
        'File/motd',
        'File/site',
        'File/upper',
      ]);
      assert.equal(
        o.revision.resources.find((r) => r.name === 'site')?.origin,
        'fleet/web/deep/site.yml:1:1',
      );
      await f.h.cycle();
      assert.equal(await read(f.h, 'etc/motd'), 'hello\n');
      assert.equal(await read(f.h, 'srv/site.conf'), 'site\n');
      assert.equal(await read(f.h, 'srv/upper'), 'upper\n');

      // A later commit that breaks only files outside fleet/ is still accepted.
      await f.repo.write('other/worse.yaml', broken);
      await f.repo.write('fleet/motd.yaml', fileManifest('motd', 'etc/motd', 'still fine\n'));
      const second = await f.repo.commitAndPush('noise outside fleet');
      assertAccepted(await f.h.poll(), second);
      assert.equal(count(f.h, 'revision_rejected'), 0);
    });

    test('after a restart with a bad commit pushed while down, the last good revision is restored and enforced', async (t) => {
      const f = await setup(engine, t);
      await firstCycle(f);
      await f.h.agent.stop();

      await f.repo.write(
        'fleet/motd.yaml',
        'apiVersion: steward/v1\nkind: File\nmetadata: { name: motd\nspec: {}\n',
      );
      const bad = await f.repo.commitAndPush('broken while down');
      await handEdit(f.h, 'etc/motd', 'hacked\n');

      await f.h.restart();
      assert.equal(f.h.agent.source.current?.sha, f.first, 'restored from state before any poll');
      f.server.clearRequests();
      const o = await f.h.poll();
      assertRejected(o);
      assert.equal(o.sha, bad);
      assert.equal(o.problems[0]?.file, 'fleet/motd.yaml');
      const report = await f.h.cycle();
      assert.equal(report.revision, f.first);
      assert.equal(await read(f.h, 'etc/motd'), 'hello\n');
      assert.equal(f.h.agent.source.current?.sha, f.first);
      // Restored from the local cache: the old revision was not downloaded again, only the bad one
      // (one upload-pack POST; native git's stateless shallow fetch makes two).
      assert.equal(f.server.packRequests(), engine === 'git' ? 2 : 1);
    });

    test('a new revision right after an apply is applied in the next cycle, not held as "did not stick"', async (t) => {
      const f = await setup(engine, t);
      assertAccepted(await f.h.poll(), f.first);
      assert.equal((await f.h.cycle()).applied, 1);
      // No verifying cycle in between: the resource is still "verify pending".
      await f.repo.write('fleet/motd.yaml', fileManifest('motd', 'etc/motd', 'right away\n'));
      const second = await f.repo.commitAndPush('right away');
      const report = await f.h.cycle();
      assert.equal(report.revision, second);
      assert.equal(report.applied, 1, JSON.stringify(report.drift));
      assert.equal(await read(f.h, 'etc/motd'), 'right away\n');
    });

    test('a commit that removes source.path altogether is rejected, never read as "manage nothing"', async (t) => {
      const f = await setup(engine, t);
      await firstCycle(f);
      await f.repo.remove('fleet');
      await f.repo.write('README.md', 'moved everything\n');
      const gone = await f.repo.commitAndPush('remove fleet');
      const o = await f.h.poll();
      assertRejected(o);
      assert.equal(o.sha, gone);
      assert.deepEqual(
        o.problems.map((p) => ({ file: p.file, line: p.line, col: p.col })),
        [{ file: 'fleet', line: 1, col: 1 }],
      );
      assert.match(o.problems[0]?.message ?? '', /source\.path "fleet" does not exist/);
      await handEdit(f.h, 'etc/motd', 'hacked\n');
      const report = await f.h.cycle();
      assert.equal(report.revision, f.first);
      assert.equal(report.managed, 1);
      assert.equal(await read(f.h, 'etc/motd'), 'hello\n');
    });

    test('when the remote goes back to the good revision after a rejection, the rejection is cleared', async (t) => {
      const f = await setup(engine, t);
      await firstCycle(f);
      await f.repo.write('fleet/motd.yaml', 'kind: [\n');
      const bad = await f.repo.commitAndPush('broken');
      assertRejected(await f.h.poll());
      assert.equal(f.h.agent.source.rejected?.sha, bad);
      // Someone force-pushes the branch back to the good commit.
      await git(f.repo.workDir, ['reset', '--quiet', '--hard', f.first]);
      await git(f.repo.workDir, ['push', '--quiet', '--force', 'origin', 'HEAD:refs/heads/main']);
      assert.deepEqual(await f.h.poll(), { kind: 'unchanged', sha: f.first });
      assert.equal(f.h.agent.source.rejected, null, 'the remote no longer has a rejected revision');
    });

    test("a revision's fetchedAt comes from the agent's clock", async (t) => {
      const f = await setup(engine, t);
      assertAccepted(await f.h.poll(), f.first);
      assert.equal(f.h.agent.source.current?.fetchedAt, f.h.clock.now);
    });
  });
