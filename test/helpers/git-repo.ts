/**
 * Test helper: real Git repositories authored with the real `git` CLI.
 *
 * `createTestRepo` makes a bare repository under a project root (the directory a
 * `GitServer` serves) and a non-bare work tree whose `origin` is that bare repo,
 * so a test can write files, commit and push new revisions for the agent to see.
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { devNull } from 'node:os';
import { dirname, join } from 'node:path';
import { GIT_HOME } from '../../agent/source/native-git.js';

export interface TestRepo {
  /** `<projectRoot>/<name>.git`: the bare repository served by the server. */
  bareDir: string;
  /** A non-bare repository (`<projectRoot>/.work/<name>`) used to author commits. */
  workDir: string;
  /** Writes a file in the work tree, creating parent directories. */
  write(relPath: string, content: string): Promise<void>;
  /** Removes a file (or directory) from the work tree. */
  remove(relPath: string): Promise<void>;
  /** `git add -A && git commit` (empty commits allowed); returns the new commit sha. */
  commit(message: string): Promise<string>;
  /** Pushes the branch to the bare repository (local path push). */
  push(): Promise<void>;
  /** `commit` then `push`; returns the new commit sha. */
  commitAndPush(message: string): Promise<string>;
  /** The sha of the work tree's HEAD. */
  head(): Promise<string>;
}

export interface CreateTestRepoOptions {
  /** Directory served by the git server; the bare repo is created in it. */
  projectRoot: string;
  /** Repository name without `.git`. */
  name: string;
  /** Branch to author on; default `main`. */
  branch?: string;
  /** Point the bare repo's HEAD at `refs/heads/<this>` (may name a branch that does not exist). */
  headPointsTo?: string;
}

/**
 * HOME for the tests' git: /dev/null, below which no ~/.gitconfig can exist (as for the agent's own git,
 * agent/source/native-git.ts GIT_HOME), and no temporary directory to remove when a test process is killed.
 */
export function gitTestHome(): string {
  return GIT_HOME;
}

/** Environment for git built from scratch (only PATH is inherited): no user/system config, no prompts. */
export function isolatedGitEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: gitTestHome(),
    LANG: 'C',
    LC_ALL: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: devNull,
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Steward Test',
    GIT_AUTHOR_EMAIL: 'test@steward.invalid',
    GIT_COMMITTER_NAME: 'Steward Test',
    GIT_COMMITTER_EMAIL: 'test@steward.invalid',
  };
  const systemRoot = process.env['SYSTEMROOT'];
  if (systemRoot !== undefined) env['SYSTEMROOT'] = systemRoot;
  return { ...env, ...extra };
}

/** Runs the real git CLI in `cwd`; resolves to trimmed stdout, rejects with stderr on failure. */
export function git(cwd: string, args: string[], env?: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      args,
      { cwd, env: isolatedGitEnv(env), maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`git ${args.join(' ')} (in ${cwd}) failed: ${stderr.trim() || error.message}`));
          return;
        }
        resolve(stdout.trim());
      },
    );
  });
}

/** Creates a bare repo `<projectRoot>/<name>.git` and a work tree cloned from it. */
export async function createTestRepo(opts: CreateTestRepoOptions): Promise<TestRepo> {
  const branch = opts.branch ?? 'main';
  const bareDir = join(opts.projectRoot, `${opts.name}.git`);
  const workDir = join(opts.projectRoot, '.work', opts.name);
  await mkdir(bareDir, { recursive: true });
  await mkdir(workDir, { recursive: true });
  await git(bareDir, ['init', '--quiet', '--bare', '-b', branch]);
  if (opts.headPointsTo !== undefined) {
    await git(bareDir, ['symbolic-ref', 'HEAD', `refs/heads/${opts.headPointsTo}`]);
  }
  await git(workDir, ['init', '--quiet', '-b', branch]);
  await git(workDir, ['remote', 'add', 'origin', bareDir]);
  return makeRepo(bareDir, workDir, branch);
}

/** Builds the TestRepo methods over an initialised bare repo and work tree. */
function makeRepo(bareDir: string, workDir: string, branch: string): TestRepo {
  const head = (): Promise<string> => git(workDir, ['rev-parse', 'HEAD']);
  const commit = async (message: string): Promise<string> => {
    await git(workDir, ['add', '-A']);
    await git(workDir, ['commit', '--quiet', '--allow-empty', '--no-gpg-sign', '-m', message]);
    return head();
  };
  const push = async (): Promise<void> => {
    await git(workDir, ['push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`]);
  };
  return {
    bareDir,
    workDir,
    async write(relPath, content) {
      const file = join(workDir, relPath);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, content, 'utf8');
    },
    async remove(relPath) {
      await rm(join(workDir, relPath), { recursive: true, force: true });
    },
    commit,
    push,
    async commitAndPush(message) {
      const sha = await commit(message);
      await push();
      return sha;
    },
    head,
  };
}
