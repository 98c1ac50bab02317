/**
 * Git cache pruning (issue 12), each engine over real smart HTTP: over many pushes the cache in the state
 * dir stops growing (objects counted by `git count-objects`, never timed), and the revision in force survives
 * a prune even when the branch has moved on to a rejected one. The native engine repacks; the isomorphic
 * one drops whole packs that hold nothing the kept revisions need.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createGitEngine, type EngineKind } from '../../../agent/source/engine.js';
import { ISOMORPHIC_PRUNE_EVERY_FETCHES } from '../../../agent/source/git.js';
import { PRUNE_EVERY_FETCHES } from '../../../agent/source/native-git.js';
import { DesiredStateSource } from '../../../agent/source/source.js';
import { KINDS } from '../../../providers/registry.js';
import { createTestRepo, git } from '../../helpers/git-repo.js';
import { SOURCE_AUTH } from '../../helpers/git-source.js';
import { startGitServer } from '../../helpers/git-server.js';

const FILES = 40;
const manifest = (i: number, v: number): string =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: r${i} }\nspec: { path: etc/r${i}, content: "v${v} ${i}\\n" }\n`;

/** Loose + packed objects in the cache. */
async function objects(gitdir: string): Promise<number> {
  const out = await git(gitdir, ['count-objects', '-v']);
  const field = (k: string) => Number(new RegExp(`^${k}: (\\d+)$`, 'm').exec(out)?.[1] ?? 'NaN');
  return field('count') + field('in-pack');
}

const ENGINES: Array<[EngineKind, number]> = [
  ['git', PRUNE_EVERY_FETCHES],
  ['isomorphic', ISOMORPHIC_PRUNE_EVERY_FETCHES],
];

for (const [engine, PRUNE_EVERY] of ENGINES)
  test(`the ${engine} engine's cache stops growing over many pushes; the accepted revision survives pruning`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'steward-prune-'));
    const projectRoot = join(dir, 'srv');
    const repo = await createTestRepo({ projectRoot, name: 'desired' });
    const server = await startGitServer({ projectRoot, auth: SOURCE_AUTH });
    t.after(async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    });
    const push = async (v: number) => {
      for (let i = 0; i < FILES; i++) await repo.write(`fleet/f${i}.yaml`, manifest(i, v)); // every blob new
      return repo.commitAndPush(`v${v}`);
    };
    await push(0);
    const cacheDir = join(dir, 'cache');
    const source = new DesiredStateSource(
      createGitEngine(
        {
          url: server.repoUrl('desired'),
          kind: 'http',
          ref: 'main',
          path: 'fleet',
          auth: SOURCE_AUTH,
          cacheDir,
        },
        engine,
      ),
      KINDS,
      () => 0,
    );
    assert.equal((await source.poll()).kind, 'accepted');
    const [name] = await readdir(cacheDir);
    const gitdir = join(cacheDir, name!);
    const perRevision = await objects(gitdir); // FILES blobs + trees + a commit

    const pushes = 3 * PRUNE_EVERY;
    let most = 0;
    for (let v = 1; v <= pushes; v++) {
      await push(v);
      assert.equal((await source.poll()).kind, 'accepted');
      most = Math.max(most, await objects(gitdir));
    }
    // Unpruned, the cache would hold every revision: (pushes + 1) × perRevision objects.
    assert.ok(
      most <= (PRUNE_EVERY + 1) * perRevision,
      `${most} objects after ${pushes} pushes of ${perRevision} each`,
    );

    // A bad revision moves the branch; prunes meanwhile must keep the one in force readable.
    const good = source.current!.sha;
    for (let k = 0; k < PRUNE_EVERY; k++) {
      await repo.write('fleet/bad.yaml', `kind: [${k}\n`);
      await repo.commitAndPush(`bad ${k}`);
      assert.equal((await source.poll()).kind, 'rejected');
    }
    assert.equal(source.current!.sha, good);
    const reread = await source.repo.readManifests(good);
    assert.equal(reread.files.length, FILES, 'the accepted revision is still in the cache');
  });
