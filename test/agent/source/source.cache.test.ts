/**
 * The parsed-manifest cache (issue 12): a revision that changes one file reads and parses that file only, on
 * both engines, and what it accepts or rejects is what a fresh source (no cache) accepts or rejects — problems
 * in unchanged files included, with the same line:col. Counted (files parsed, blobs read), never timed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createGitEngine } from '../../../agent/source/engine.js';
import { DesiredStateSource, type PollOutcome } from '../../../agent/source/source.js';
import { KINDS } from '../../../providers/registry.js';
import { createTestRepo, type TestRepo } from '../../helpers/git-repo.js';
import { ENGINES } from '../../helpers/git-source.js';

const manifest = (name: string, content = 'x'): string =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: { path: etc/${name}, content: "${content}\\n" }\n`;

const FILES = 20;
const file = (i: number): string => `fleet/f${String(i).padStart(2, '0')}.yaml`;

for (const engine of ENGINES)
  describe(engine, () => {
    async function setup(
      t: test.TestContext,
    ): Promise<{ repo: TestRepo; source: (opts?: { oneShot?: boolean }) => DesiredStateSource }> {
      const dir = await mkdtemp(join(tmpdir(), 'steward-cache-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      const repo = await createTestRepo({ projectRoot: dir, name: 'desired' });
      for (let i = 0; i < FILES; i++) await repo.write(file(i), manifest(`r${i}`));
      await repo.commit('initial');
      let n = 0;
      const source = (opts: { oneShot?: boolean } = {}) =>
        new DesiredStateSource(
          createGitEngine(
            {
              url: repo.workDir,
              kind: 'local',
              ref: 'main',
              path: 'fleet',
              auth: null,
              cacheDir: join(dir, `cache-${n++}`),
            },
            engine,
          ),
          KINDS,
          () => 0,
          null,
          opts,
        );
      return { repo, source };
    }

    /** Counts the blobs the engine reads (it skips the ones the cache holds). */
    function countReads(s: DesiredStateSource): { read: number } {
      const count = { read: 0 };
      const inner = s.repo.readManifests.bind(s.repo);
      s.repo.readManifests = async (sha, known) => {
        const r = await inner(sha, known);
        count.read += r.files.length;
        return r;
      };
      return count;
    }

    const resources = (o: PollOutcome) => {
      assert.equal(o.kind, 'accepted', JSON.stringify(o).slice(0, 300));
      return o.kind === 'accepted' ? o.revision.resources : [];
    };

    test('a one-file push reads and parses one file; the revision equals a fresh parse', async (t) => {
      const { repo, source } = await setup(t);
      const s = source();
      const reads = countReads(s);
      assert.equal(resources(await s.poll()).length, FILES);
      assert.equal(s.manifests.parsed, FILES);
      assert.equal(reads.read, FILES);

      await repo.write(file(7), manifest('r7', 'changed'));
      await repo.commit('one file');
      const second = resources(await s.poll());
      assert.equal(s.manifests.parsed, FILES + 1, 'only the changed file is parsed again');
      assert.equal(reads.read, FILES + 1, 'only the changed blob is read');
      assert.deepEqual(second, resources(await source().poll()));
      assert.equal(second.find((r) => r.name === 'r7')?.desired.spec['content'], 'changed\n');

      await repo.remove(file(3));
      await repo.commit('one file less');
      const third = resources(await s.poll());
      assert.equal(s.manifests.parsed, FILES + 1, 'a removal parses nothing');
      assert.equal(third.length, FILES - 1);
      assert.deepEqual(third, resources(await source().poll()));
      assert.equal(s.manifests.size, FILES - 1, 'the removed file left the cache');
    });

    test('a one-shot source (steward plan) parses every file and keeps no compressed text for a later poll', async (t) => {
      const { source } = await setup(t);
      const daemon = source();
      const once = source({ oneShot: true });
      assert.deepEqual(resources(await once.poll()), resources(await daemon.poll()));
      assert.equal(once.manifests.parsed, FILES);
      assert.equal(once.manifests.packed, 0, 'nothing compressed');
      assert.equal(once.manifests.size, 0, 'nothing kept: the parsed documents go with the revision built');
      assert.equal(daemon.manifests.packed, FILES, 'the daemon keeps each text, compressed');
    });

    test('a problem in an unchanged file is reported where a fresh source reports it', async (t) => {
      const { repo, source } = await setup(t);
      const s = source();
      assert.equal((await s.poll()).kind, 'accepted');
      // a0.yaml sorts first: the duplicate is reported in f05.yaml, which the cache holds and the push did not touch
      await repo.write('fleet/a0.yaml', `# a comment\n\n${manifest('r5')}`);
      await repo.write(file(5), `# moved down\n\n\n${manifest('r5')}`);
      await repo.commit('setup');
      assert.equal((await s.poll()).kind, 'rejected');
      await repo.write('fleet/a0.yaml', `# a comment\n${manifest('r5')}`);
      await repo.commit('only a0 changes');
      const cached = await s.poll();
      const fresh = await source().poll();
      assert.equal(cached.kind, 'rejected');
      assert.deepEqual(cached, fresh);
      const problem = cached.kind === 'rejected' ? cached.problems[0] : undefined;
      assert.equal(problem?.file, file(5));
      assert.equal(problem?.line, 6, 'the line of metadata.name in f05.yaml');
    });
  });
