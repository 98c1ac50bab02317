import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { nodeZlib } from '../../core/builtins.js';

const OBJECT_ID = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

/** Which full refs a configured `source.ref` names: `refs/…` as written, else the branch, then the tag. */
export function refCandidates(ref: string): string[] {
  return ref.startsWith('refs/') ? [ref] : [`refs/heads/${ref}`, `refs/tags/${ref}`];
}

/**
 * The commit a local repository's `ref` names, read the way git reads it, without a git process, when that
 * is certain: the ref is a loose file under `gitdir` holding an object id, and that object is a loose
 * `commit` (its zlib header says so). Anything else — a packed ref, a symbolic ref, a tag to peel, a packed
 * or missing object, reftable, a symlink — is null, and the caller asks `git rev-parse` as before, so the
 * answer never differs from git's (`<ref>^{commit}`): this only saves that process when the commit is loose,
 * e.g. right after a commit (`steward plan` on a working repository).
 */
export function looseCommit(gitdir: string, ref: string): string | null {
  if (!/^refs\/(?:[A-Za-z0-9._-]+\/)*[A-Za-z0-9._-]+$/.test(ref) || ref.split('/').includes('..'))
    return null;
  const id = readSmall(join(gitdir, ref), 128)?.toString('latin1').trim();
  if (!id || !OBJECT_ID.test(id)) return null;
  const object = readSmall(join(gitdir, 'objects', id.slice(0, 2), id.slice(2)), 64);
  if (!object) return null;
  let header: Buffer;
  try {
    header = nodeZlib().inflateSync(object, { finishFlush: nodeZlib().constants.Z_SYNC_FLUSH });
  } catch {
    return null;
  }
  return /^commit [0-9]+\0/.test(header.subarray(0, 32).toString('latin1')) ? id : null;
}

/** Up to `max` bytes of a regular file (not through a symlink), or null. */
function readSmall(path: string, max: number): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    if (!fstatSync(fd).isFile()) return null;
    const buf = Buffer.alloc(max);
    return buf.subarray(0, readSync(fd, buf, 0, max, 0));
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}
