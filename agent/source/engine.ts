/**
 * The one interface `DesiredStateSource` reads Git through, and the factory
 * that picks an engine:
 *
 * - `git`: the native `git` binary (agent/source/native-git.ts) — thin packs,
 *   `cat-file --batch` reads; fastest where a `git` ≥ 2.31 is installed;
 * - `isomorphic`: isomorphic-git (agent/source/git.ts) — pure JavaScript, for
 *   images without a `git` binary (e.g. distroless);
 * - `auto`: `git` when a usable binary is on the PATH (for a remote source ≥ 2.31; for a local repository
 *   any), else `isomorphic`.
 *
 * Both keep SPEC §9 the same way (credentials only to the configured origin,
 * same-origin redirects only, bounded reads, timeouts) and fail with the same
 * coded errors; test/e2e/source-*.test.ts run against both.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { type GitEngine, GitRepository, type GitSourceOptions } from './git.js';
import { NativeGitEngine, NATIVE_GIT_MIN } from './native-git.js';

/** The interface lives beside the options and results it uses (git.ts), so neither engine imports this module. */
export type { GitEngine } from './git.js';

export type EngineKind = 'auto' | 'git' | 'isomorphic';
export const ENGINE_KINDS: readonly EngineKind[] = ['auto', 'git', 'isomorphic'];

let probed: { major: number; minor: number } | null | undefined;

/** The version of the `git` on the PATH, or null when there is none (probed once per process). */
export function nativeGitVersion(): { major: number; minor: number } | null {
  if (probed !== undefined) return probed;
  const r = spawnSync('git', ['--version'], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' },
    timeout: 10_000,
  });
  const m = r.status === 0 ? /git version (\d+)\.(\d+)/.exec(r.stdout) : null;
  probed = m ? { major: Number(m[1]), minor: Number(m[2]) } : null;
  return probed;
}

/** True when a `git` new enough for the native engine is on the PATH. */
export function nativeGitUsable(): boolean {
  const v = nativeGitVersion();
  if (!v) return false;
  return (
    v.major > NATIVE_GIT_MIN.major || (v.major === NATIVE_GIT_MIN.major && v.minor >= NATIVE_GIT_MIN.minor)
  );
}

/**
 * The first `git` on the PATH that this process may execute, as spawning `git` would find it, or null. A
 * look at the file system: no process.
 */
export function gitOnPath(): string | null {
  for (const dir of (process.env['PATH'] ?? '/usr/bin:/bin').split(delimiter)) {
    const path = join(dir || '.', 'git');
    try {
      if (!statSync(path).isFile()) continue;
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not there, or not executable by this user: the next PATH entry, as execvp does
    }
  }
  return null;
}

/**
 * The engine for `kind`. `auto` is native git when usable, else isomorphic-git. Usable, for a remote source: a
 * git ≥ 2.31 on the PATH (the relay's header reaches git through GIT_CONFIG_COUNT), asked with `git --version`.
 * For a local repository, read in place with `cat-file --batch` and `rev-parse` that every git has: any git on
 * the PATH, found without a process (the version probe was ≈ 3 ms of every `steward plan`, issue 12).
 */
export function createGitEngine(opts: GitSourceOptions, kind: EngineKind = 'auto'): GitEngine {
  if (kind === 'isomorphic') return new GitRepository(opts);
  if (kind === 'auto') {
    const usable = opts.kind === 'local' ? gitOnPath() !== null : nativeGitUsable();
    if (!usable) return new GitRepository(opts);
  }
  return new NativeGitEngine(opts);
}
