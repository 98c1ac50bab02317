/**
 * Test helper: a served repository with one pushed commit behind a real Git
 * smart-HTTP server (Basic auth), and a factory for the agent's Git source on
 * it — without the whole agent, so tests can pass HTTP limits and poll directly.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createGitEngine, type EngineKind } from '../../agent/source/engine.js';
import type { GitSourceOptions } from '../../agent/source/git.js';
import { DesiredStateSource } from '../../agent/source/source.js';
import { KINDS } from '../../providers/registry.js';
import { createTestRepo, type TestRepo } from './git-repo.js';
import { type GitServer, startGitServer } from './git-server.js';

/** The engines the source suites run against: each test runs once per engine. */
export const ENGINES: readonly Exclude<EngineKind, 'auto'>[] = ['isomorphic', 'git'];

export const SOURCE_AUTH = { username: 'steward', password: 'pa55-W0rd-s3cret' };

/** Every form the credentials could leak in. */
export const SOURCE_SECRETS = [
  SOURCE_AUTH.password,
  Buffer.from(`${SOURCE_AUTH.username}:${SOURCE_AUTH.password}`).toString('base64'),
];

export interface ServedRepo {
  dir: string;
  /** Directory of bare repositories; another server may serve it too. */
  projectRoot: string;
  /** Requires SOURCE_AUTH. */
  server: GitServer;
  /** The sha of the one commit on main. */
  first: string;
  /** Where commits are authored and pushed from. */
  repo: TestRepo;
  /** A fresh source (own object cache) on `url`, default the served repo. */
  source(url?: string, http?: GitSourceOptions['http'], ref?: string): Promise<DesiredStateSource>;
}

/** Everything is stopped and removed after the test. Sources use `engine` (default isomorphic). */
export async function serveRepo(t: TestContext, engine: EngineKind = 'isomorphic'): Promise<ServedRepo> {
  const dir = await mkdtemp(join(tmpdir(), 'steward-e2e-src-'));
  const projectRoot = join(dir, 'srv');
  await mkdir(projectRoot);
  const repo = await createTestRepo({ projectRoot, name: 'desired' });
  await repo.write(
    'fleet/motd.yaml',
    'apiVersion: steward/v1\nkind: File\nmetadata: { name: motd }\nspec: { path: etc/motd, content: "hello\\n" }\n',
  );
  const first = await repo.commitAndPush('initial');
  const server = await startGitServer({ projectRoot, auth: SOURCE_AUTH });
  t.after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });
  let n = 0;
  const source = async (url = server.repoUrl('desired'), http?: GitSourceOptions['http'], ref = 'main') => {
    const opts: GitSourceOptions = {
      url,
      kind: 'http',
      ref,
      path: 'fleet',
      auth: SOURCE_AUTH,
      cacheDir: join(dir, `cache-${n++}`),
    };
    if (http) opts.http = http;
    return new DesiredStateSource(createGitEngine(opts, engine), KINDS, () => 0);
  };
  return { dir, projectRoot, server, first, repo, source };
}
