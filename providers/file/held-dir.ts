/**
 * Race-free file system access below `providers.file.root` (SPEC §9: the file
 * provider never writes outside its root, even while someone swaps
 * directories for symlinks under it during the write).
 *
 * Checking a path (realpath, lstat) and then using it by name is a race: the
 * directory can be swapped for a symlink in between. So nothing here uses a
 * managed path by name from `/`:
 *
 * - The walk starts from a handle on the root and opens each directory
 *   component with `O_DIRECTORY|O_NOFOLLOW` relative to the directory held
 *   before it, through `/proc/self/fd/<fd>/<name>` (Linux: the kernel resolves
 *   `<fd>` to the held directory itself, whatever its path is now). A symlink
 *   met on the way is refused (`PATH_ESCAPE`), never followed — even one that
 *   points back inside the root. A missing directory is created with `mkdir`
 *   in the held parent, then opened with `O_NOFOLLOW` like any other.
 * - The final name is addressed in the held parent only. Reads open it with
 *   `O_NOFOLLOW|O_NONBLOCK` (a FIFO cannot hang the cycle) and check the
 *   handle's `fstat`: a symlink or anything not a regular file is
 *   `FILE_NOT_REGULAR`.
 * - Writes create a temp file `O_CREAT|O_EXCL|O_NOFOLLOW|O_WRONLY` in the held
 *   parent, write, `fchmod`, `fsync`, then `rename` it within the held parent
 *   (both names through the parent's fd) and `fsync` the parent. The temp file
 *   is removed on every failure before the rename (write, fsync, close,
 *   rename, ENOSPC, a swap detected by the caller's check).
 * - chmod is `fchmod` on a handle opened with `O_NOFOLLOW`; delete is `unlink`
 *   in the held parent. Neither ever takes a path from `/`.
 *
 * Without `/proc/self/fd` none of this holds, so the provider refuses to
 * start there ({@link assertProcFd}) instead of silently writing by path.
 */
import {
  type BigIntStats,
  closeSync,
  constants,
  fstat,
  fstatSync,
  fsync,
  lstatSync,
  openSync,
  type Stats,
  statSync,
} from 'node:fs';
import { type FileHandle, lstat, mkdir, open, rename, unlink } from 'node:fs/promises';
import { TEMP_PREFIX } from '../../core/atomic-file.js';
import { StewardError } from '../../core/errors.js';
import { nodeCrypto } from '../../core/builtins.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
const READ_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
const TEMP_FLAGS = O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY;

export const PROC_FD = '/proc/self/fd';

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

/** Fails closed where directories cannot be addressed by handle (no `/proc/self/fd`). */
export function assertProcFd(procFd = PROC_FD): void {
  let ok = false;
  try {
    ok = statSync(procFd).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok)
    throw new StewardError(
      'FILE_PROC_UNAVAILABLE',
      `the file provider needs ${procFd} (Linux, with /proc mounted) to write under providers.file.root without following swapped symlinks; it is missing here: mount /proc, or run steward on Linux`,
      { procFd },
    );
}

const fstatBig = (fd: number): Promise<BigIntStats> =>
  new Promise((resolve, reject) => fstat(fd, { bigint: true }, (e, st) => (e ? reject(e) : resolve(st))));
const fsyncFd = (fd: number): Promise<void> =>
  new Promise((resolve, reject) => fsync(fd, (e) => (e ? reject(e) : resolve())));

/**
 * A directory held open: names in it are resolved against the descriptor, never by path from `/`. Held
 * through a FileHandle (the async openers: writes) or a bare descriptor (the synchronous ones: observe, which
 * then costs no thread-pool round trip per directory).
 */
export class HeldDir {
  readonly fd: number;
  private readonly prefix: string;
  constructor(
    private readonly held: FileHandle | number,
    readonly procFd: string,
  ) {
    this.fd = typeof held === 'number' ? held : held.fd;
    this.prefix = `${procFd}/${this.fd}/`;
  }

  /** The path of `name` inside this very directory. */
  at(name: string): string {
    return this.prefix + name;
  }

  /** `dev:ino` of the held directory. */
  async identity(): Promise<string> {
    const st = await fstatBig(this.fd);
    return `${st.dev}:${st.ino}`;
  }

  /** The held directory's fstat, with 64-bit device and inode numbers. */
  statSync(): BigIntStats {
    return fstatSync(this.fd, { bigint: true });
  }

  /** fsync of the directory (a rename or unlink in it made durable). */
  sync(): Promise<void> {
    return typeof this.held === 'number' ? fsyncFd(this.held) : this.held.sync();
  }

  close(): Promise<void> {
    if (typeof this.held !== 'number') return this.held.close();
    closeSync(this.held);
    return Promise.resolve();
  }

  /** Closes a descriptor held by a synchronous opener at once (a FileHandle is closed in the background). */
  closeSync(): void {
    if (typeof this.held === 'number') closeSync(this.held);
    else void this.held.close().catch(() => undefined);
  }
}

/** Opens the configured root (the config names it, so symlinks in that path are the operator's). */
export async function openRoot(path: string, procFd = PROC_FD): Promise<HeldDir> {
  return new HeldDir(await open(path, O_RDONLY | O_DIRECTORY), procFd);
}

/** {@link openRoot} without the thread pool (observe). */
export function openRootSync(path: string, procFd = PROC_FD): HeldDir {
  return new HeldDir(openSync(path, O_RDONLY | O_DIRECTORY), procFd);
}

/**
 * Opens the directory that holds `rel`, one component at a time from `root`.
 * A missing directory is created when `create` is set; otherwise the answer
 * is null (the file is absent). A non-directory on the way is null too when
 * not creating (nothing can be there), and `FILE_NOT_REGULAR` when creating.
 * The caller closes the result unless it is `root` itself.
 */
export async function openParent(root: HeldDir, rel: string, create: boolean): Promise<HeldDir | null> {
  const parts = rel.split('/').slice(0, -1);
  let cur = root;
  for (const [i, part] of parts.entries()) {
    let next: HeldDir | null;
    try {
      next = await openComponent(cur, part, rel, parts.slice(0, i + 1).join('/'), create);
    } finally {
      if (cur !== root) await cur.close();
    }
    if (!next) return null;
    cur = next;
  }
  return cur;
}

async function openComponent(
  dir: HeldDir,
  part: string,
  rel: string,
  sub: string,
  create: boolean,
): Promise<HeldDir | null> {
  for (let attempt = 0; ; attempt++) {
    try {
      return new HeldDir(await open(dir.at(part), DIR_FLAGS), dir.procFd);
    } catch (e) {
      const c = errno(e);
      if (c === 'ENOENT' && create && attempt < 3) {
        await mkdir(dir.at(part), { mode: 0o755 }).catch((m: unknown) => {
          if (errno(m) !== 'EEXIST') throw m;
        });
        continue; // open what is there now, with O_NOFOLLOW like any other
      }
      if (c === 'ENOENT') return null;
      if (c !== 'ENOTDIR' && c !== 'ELOOP') throw e;
      return componentNotDir(await lstat(dir.at(part)).catch(() => null), rel, sub, create);
    }
  }
}

/**
 * {@link openParent} without creating and without the thread pool (observe): the same walk, flags and
 * verdicts, each directory opened with `O_DIRECTORY|O_NOFOLLOW` through the one held before it.
 */
export function openParentSync(root: HeldDir, rel: string): HeldDir | null {
  const parts = rel.split('/').slice(0, -1);
  let cur = root;
  for (const [i, part] of parts.entries()) {
    let next: HeldDir | null;
    try {
      next = openComponentSync(cur, part, rel, parts.slice(0, i + 1).join('/'));
    } finally {
      if (cur !== root) cur.closeSync();
    }
    if (!next) return null;
    cur = next;
  }
  return cur;
}

function openComponentSync(dir: HeldDir, part: string, rel: string, sub: string): HeldDir | null {
  try {
    return new HeldDir(openSync(dir.at(part), DIR_FLAGS), dir.procFd);
  } catch (e) {
    const c = errno(e);
    if (c === 'ENOENT') return null;
    if (c !== 'ENOTDIR' && c !== 'ELOOP') throw e;
    let st: Stats | null = null;
    try {
      st = lstatSync(dir.at(part));
    } catch {
      st = null;
    }
    return componentNotDir(st, rel, sub, false);
  }
}

/** What a component that could not be opened as a directory (ENOTDIR, ELOOP) means, from its lstat. */
function componentNotDir(st: Stats | null, rel: string, sub: string, create: boolean): null {
  if (st?.isSymbolicLink())
    throw new StewardError(
      'PATH_ESCAPE',
      `path "${rel}" could lead outside providers.file.root through a symlink ("${sub}"); steward never follows symlinks under the root: replace it with a real directory`,
      { path: rel },
    );
  if (!st || st.isDirectory())
    throw new StewardError(
      'PATH_ESCAPE',
      `"${sub}" on the way to "${rel}" changed while steward opened it (a symlink swapped in and out?); steward did not follow it, the next cycle looks again`,
      { path: rel },
    );
  if (!create) return null;
  throw new StewardError('FILE_NOT_REGULAR', `cannot create "${rel}": "${sub}" is not a directory`, {
    path: rel,
  });
}

/** An open regular file and what its handle's fstat said. */
export interface OpenFile {
  handle: FileHandle;
  stat: Stats;
}

/** What a failed open of a managed file means: null for ENOENT (absent), FILE_NOT_REGULAR for a symlink. */
function openFailed(e: unknown, rel: string): null {
  if (errno(e) === 'ENOENT') return null;
  if (errno(e) === 'ELOOP')
    throw new StewardError('FILE_NOT_REGULAR', `"${rel}" is a symlink; steward manages regular files only`, {
      path: rel,
    });
  throw e;
}

const notRegular = (rel: string): StewardError =>
  new StewardError('FILE_NOT_REGULAR', `"${rel}" exists but is not a regular file`, { path: rel });

/**
 * Opens the regular file `name` in `dir` for reading, without following a
 * symlink; null when it does not exist. The type check is on the handle.
 */
export async function openRegular(dir: HeldDir, name: string, rel: string): Promise<OpenFile | null> {
  let handle: FileHandle;
  try {
    handle = await open(dir.at(name), READ_FLAGS);
  } catch (e) {
    return openFailed(e, rel);
  }
  try {
    const stat = await handle.stat();
    if (stat.isFile()) return { handle, stat };
  } catch (e) {
    await handle.close();
    throw e;
  }
  await handle.close();
  throw notRegular(rel);
}

/**
 * {@link openRegular} without the thread-pool round trips, for bulk observe: the same flags
 * (`O_NOFOLLOW|O_NONBLOCK`, so neither a symlink is followed nor a FIFO waited on) and the same
 * check on the descriptor's fstat. The caller closes `fd` (closeSync).
 */
export function openRegularSync(dir: HeldDir, name: string, rel: string): { fd: number; stat: Stats } | null {
  let fd: number;
  try {
    fd = openSync(dir.at(name), READ_FLAGS);
  } catch (e) {
    return openFailed(e, rel);
  }
  let stat: Stats;
  try {
    stat = fstatSync(fd);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  if (stat.isFile()) return { fd, stat };
  closeSync(fd);
  throw notRegular(rel);
}

/**
 * Replaces `name` in `dir` atomically with `data` at `mode`. `beforeRename`
 * runs once the temp file is durable: it throws to abandon the write (a swap
 * detected), and the temp file is removed.
 */
export async function writeIn(
  dir: HeldDir,
  name: string,
  data: string,
  mode: number,
  beforeRename: () => Promise<void> = async () => {},
): Promise<void> {
  const tmp = `${TEMP_PREFIX}${name.slice(0, 64)}-${nodeCrypto().randomBytes(6).toString('hex')}`;
  const h = await open(dir.at(tmp), TEMP_FLAGS, mode);
  try {
    try {
      await h.writeFile(data);
      await h.chmod(mode); // the umask must not weaken or widen what was asked
      await h.sync();
    } finally {
      await h.close();
    }
    await beforeRename();
    await rename(dir.at(tmp), dir.at(name));
  } catch (e) {
    await unlink(dir.at(tmp)).catch(() => {});
    throw e;
  }
  await dir.sync();
}

/** Removes `name` from `dir` (the caller checked it is a regular file) and makes that durable. */
export async function unlinkIn(dir: HeldDir, name: string): Promise<void> {
  try {
    await unlink(dir.at(name));
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
    return;
  }
  await dir.sync();
}
