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
import { execFile, spawnSync } from 'node:child_process';
import { type GitEngine, GitRepository, type GitSourceOptions } from './git.js';
import { NativeGitEngine, NATIVE_GIT_MIN } from './native-git.js';

/** The interface lives beside the options and results it uses (git.ts), so neither engine imports this module. */
export type { GitEngine } from './git.js';

export type EngineKind = 'auto' | 'git' | 'isomorphic';
export const ENGINE_KINDS: readonly EngineKind[] = ['auto', 'git', 'isomorphic'];

type GitVersion = { major: number; minor: number };
let probed: GitVersion | null | undefined;
let probing: Promise<GitVersion | null> | undefined;

const PROBE = {
  args: ['--version'],
  env: (): NodeJS.ProcessEnv => ({ PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' }),
  timeout: 10_000,
  parse(ok: boolean, stdout: string): GitVersion | null {
    const m = ok ? /git version (\d+)\.(\d+)/.exec(stdout) : null;
    return m ? { major: Number(m[1]), minor: Number(m[2]) } : null;
  },
};

/** The version of the `git` on the PATH, or null when there is none (probed once per process). */
export function nativeGitVersion(): GitVersion | null {
  if (probed !== undefined) return probed;
  const r = spawnSync('git', PROBE.args, { encoding: 'utf8', env: PROBE.env(), timeout: PROBE.timeout });
  probed = PROBE.parse(r.status === 0, r.stdout);
  return probed;
}

/**
 * {@link nativeGitVersion} without blocking: a one-shot command (`steward plan`) starts the probe first and
 * awaits it just before it builds the source, so the `git --version` process runs beside the config's
 * loading instead of before the first read (≈ 3–5 ms of every plan, issue 12). Never rejects.
 */
export function probeNativeGit(): Promise<GitVersion | null> {
  if (probed !== undefined) return Promise.resolve(probed);
  probing ??= new Promise((resolve) => {
    execFile(
      'git',
      PROBE.args,
      { encoding: 'utf8', env: PROBE.env(), timeout: PROBE.timeout },
      (err, stdout) => {
        probed ??= PROBE.parse(err === null, stdout);
        resolve(probed);
      },
    );
  });
  return probing;
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
