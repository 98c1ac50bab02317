/**
 * The one interface `DesiredStateSource` reads Git through, and the factory
 * that picks an engine:
 *
 * - `git`: the native `git` binary (agent/source/native-git.ts) — thin packs,
 *   `cat-file --batch` reads; fastest where a `git` ≥ 2.31 is installed;
 * - `isomorphic`: isomorphic-git (agent/source/git.ts) — pure JavaScript, for
 *   images without a `git` binary (e.g. distroless);
 * - `auto`: `git` when a usable binary is on the PATH, else `isomorphic`.
 *
 * Both keep SPEC §9 the same way (credentials only to the configured origin,
 * same-origin redirects only, bounded reads, timeouts) and fail with the same
 * coded errors; test/e2e/source-*.test.ts run against both.
 */
import { spawnSync } from 'node:child_process';
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

/** The engine for `kind`; `auto` is native git when usable, else isomorphic-git. */
export function createGitEngine(opts: GitSourceOptions, kind: EngineKind = 'auto'): GitEngine {
  if (kind === 'isomorphic' || (kind === 'auto' && !nativeGitUsable())) return new GitRepository(opts);
  return new NativeGitEngine(opts);
}
