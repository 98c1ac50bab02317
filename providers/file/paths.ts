/**
 * Keeping every File inside `providers.file.root`. A manifest's path was
 * already checked to be relative without `..`; here we check the real file
 * system, where a symlink could still lead outside.
 */
import { lstat, mkdir, realpath } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { StewardError } from '../../agent/errors.js';

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root + sep);
}

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

/** The real path of the nearest existing ancestor of `p` (or `p` itself). */
async function nearestReal(p: string, root: string): Promise<string> {
  let cur = p;
  for (;;) {
    try {
      return await realpath(cur);
    } catch (e) {
      if (code(e) !== 'ENOENT' && code(e) !== 'ENOTDIR') throw e;
      if (cur === root || dirname(cur) === cur) throw e;
      cur = dirname(cur);
    }
  }
}

export interface ResolvedPath {
  /** Absolute path of the managed file (its parent is verified inside the root). */
  abs: string;
}

/**
 * Resolves `rel` under the (real) root and verifies that the parent directory,
 * followed through any symlinks, is still inside the root. The final
 * component is not followed: callers lstat it and refuse symlinks.
 */
export async function resolveInside(rootReal: string, rel: string): Promise<ResolvedPath> {
  const abs = join(rootReal, rel);
  if (!inside(rootReal, abs) || abs === rootReal)
    throw new StewardError('PATH_ESCAPE', `path "${rel}" leads outside providers.file.root`, { path: rel });
  const parentReal = await nearestReal(dirname(abs), rootReal);
  if (!inside(rootReal, parentReal))
    throw new StewardError(
      'PATH_ESCAPE',
      `path "${rel}" leads outside providers.file.root through a symlink (to ${parentReal}); steward will not follow it`,
      { path: rel },
    );
  return { abs };
}

/** Creates the missing parent directories of `abs` one by one, re-checking that each stays inside the root. */
export async function ensureParents(rootReal: string, abs: string, rel: string): Promise<void> {
  const parts = relative(rootReal, dirname(abs)).split(sep).filter(Boolean);
  let cur = rootReal;
  for (const part of parts) {
    cur = join(cur, part);
    try {
      await mkdir(cur, { mode: 0o755 });
    } catch (e) {
      if (code(e) !== 'EEXIST') throw e;
    }
    const st = await lstat(cur);
    if (st.isSymbolicLink()) {
      const real = await realpath(cur);
      if (!inside(rootReal, real))
        throw new StewardError(
          'PATH_ESCAPE',
          `path "${rel}" leads outside providers.file.root through a symlink`,
          { path: rel },
        );
    } else if (!st.isDirectory()) {
      throw new StewardError(
        'FILE_NOT_REGULAR',
        `cannot create "${rel}": "${relative(rootReal, cur)}" is not a directory`,
        { path: rel },
      );
    }
  }
}
