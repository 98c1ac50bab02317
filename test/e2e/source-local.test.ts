/**
 * A local repository as the source (read in place, no fetch), against each
 * engine: the same revisions read the same way — nested manifests only under
 * source.path, a missing path, an oversized or non-UTF-8 file as problems, a
 * branch, a full ref or an annotated tag, a missing ref, a directory that is
 * not a repository.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { createGitEngine } from '../../agent/source/engine.js';
import type { GitSourceOptions } from '../../agent/source/git.js';
import { DesiredStateSource, type PollOutcome } from '../../agent/source/source.js';
import { KINDS } from '../../providers/registry.js';
import { createTestRepo, git, type TestRepo } from '../helpers/git-repo.js';
import { ENGINES } from '../helpers/git-source.js';

const manifest = (name: string): string =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: { path: etc/${name}, content: "x\\n" }\n`;

async function localRepo(t: TestContext): Promise<{ dir: string; repo: TestRepo }> {
  const dir = await mkdtemp(join(tmpdir(), 'steward-e2e-local-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const repo = await createTestRepo({ projectRoot: dir, name: 'desired' });
  return { dir, repo };
}

function outcome(o: PollOutcome, kind: PollOutcome['kind']): asserts o is PollOutcome {
  assert.equal(o.kind, kind, JSON.stringify(o).slice(0, 400));
}

for (const engine of ENGINES)
  describe(engine, () => {
    const source = (dir: string, url: string, extra: Partial<GitSourceOptions> = {}): DesiredStateSource =>
      new DesiredStateSource(
        createGitEngine(
          {
            url,
            kind: 'local',
            ref: 'main',
            path: 'fleet',
            auth: null,
            cacheDir: join(dir, 'cache'),
            ...extra,
          },
          engine,
        ),
        KINDS,
        () => 0,
      );

    test('a work tree and a bare repository are read in place: only manifests under source.path', async (t) => {
      const { dir, repo } = await localRepo(t);
      await repo.write('fleet/a.yaml', manifest('a'));
      await repo.write('fleet/deep/er/b.yml', manifest('b'));
      await repo.write('fleet/notes.txt', 'kind: [\n');
      await repo.write('fleetish/bad.yaml', 'kind: [\n');
      await repo.write('top.yaml', 'kind: [\n');
      const sha = await repo.commitAndPush('initial');
      for (const url of [repo.workDir, repo.bareDir]) {
        const o = await source(dir, url).poll();
        outcome(o, 'accepted');
        if (o.kind !== 'accepted') continue;
        assert.equal(o.revision.sha, sha);
        assert.deepEqual(o.revision.resources.map((r) => `${r.key} ${r.origin}`).sort(), [
          'File/a fleet/a.yaml:1:1',
          'File/b fleet/deep/er/b.yml:1:1',
        ]);
      }
      // source.path '.': every manifest in the repository is read (and here one is broken).
      const all = await source(dir, repo.workDir, { path: '.' }).poll();
      outcome(all, 'rejected');
      if (all.kind === 'rejected')
        assert.deepEqual([...new Set(all.problems.map((p) => p.file))].sort(), [
          'fleetish/bad.yaml',
          'top.yaml',
        ]);
    });

    test('an oversized and a non-UTF-8 manifest are problems; a removed source.path is a problem', async (t) => {
      const { dir, repo } = await localRepo(t);
      await repo.write('fleet/a.yaml', manifest('a'));
      await repo.write('fleet/big.yaml', `# ${'x'.repeat(1024 * 1024)}\n`);
      const s = source(dir, repo.workDir);
      const head = await repo.commitAndPush('big');
      const o = await s.poll();
      outcome(o, 'rejected');
      if (o.kind === 'rejected') {
        assert.equal(o.sha, head);
        assert.deepEqual(
          o.problems.map((p) => p.file),
          ['fleet/big.yaml'],
        );
        assert.match(o.problems[0]?.message ?? '', /file is 1048579 bytes; manifests are limited to 1048576/);
      }
      await repo.remove('fleet/big.yaml');
      await writeFile(join(repo.workDir, 'fleet/latin1.yaml'), Buffer.from([0x23, 0x20, 0xe9, 0x0a]));
      await repo.commitAndPush('latin1');
      const bad = await s.poll();
      outcome(bad, 'rejected');
      if (bad.kind === 'rejected')
        assert.deepEqual(
          bad.problems.map((p) => `${p.file}: ${p.message}`),
          ['fleet/latin1.yaml: file is not valid UTF-8'],
        );
      await repo.remove('fleet');
      await repo.write('README.md', 'moved\n');
      const gone = await repo.commitAndPush('remove fleet');
      const none = await s.poll();
      outcome(none, 'rejected');
      if (none.kind === 'rejected')
        assert.deepEqual(
          none.problems.map((p) => `${p.file}: ${p.message}`),
          [`fleet: source.path "fleet" does not exist at ${gone.slice(0, 12)}`],
        );
    });

    test('a full ref and an annotated tag resolve to their commit; a missing ref and a non-repository fail with their codes', async (t) => {
      const { dir, repo } = await localRepo(t);
      await repo.write('fleet/a.yaml', manifest('a'));
      const sha = await repo.commitAndPush('initial');
      await git(repo.workDir, ['tag', '-a', '-m', 'release', 'v1']);
      for (const ref of ['refs/heads/main', 'v1']) {
        const o = await source(dir, repo.workDir, { ref }).poll();
        outcome(o, 'accepted');
        if (o.kind === 'accepted') assert.equal(o.revision.sha, sha, ref);
      }
      const missing = await source(dir, repo.workDir, { ref: 'nope' }).poll();
      outcome(missing, 'error');
      if (missing.kind === 'error') {
        assert.equal(missing.error.code, 'SOURCE_REF_NOT_FOUND');
        assert.match(missing.error.message, /ref "nope" not found in .*; check source\.ref/);
      }
      const notRepo = await source(dir, dir).poll();
      outcome(notRepo, 'error');
      if (notRepo.kind === 'error') {
        assert.equal(notRepo.error.code, 'SOURCE_UNREACHABLE');
        assert.match(notRepo.error.message, /is not a Git repository/);
      }
    });
  });
