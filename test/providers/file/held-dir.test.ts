/**
 * The file provider's handle-based file system access, on real directories:
 * symlinks met on the way are refused (not followed), the final name is
 * checked on its handle, and no temp file survives a failed write.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { TEMP_PREFIX } from '../../../core/atomic-file.js';
import { isStewardError } from '../../../core/errors.js';
import {
  assertProcFd,
  type HeldDir,
  openParent,
  openRegular,
  openRoot,
  writeIn,
} from '../../../providers/file/held-dir.js';
import { FileProvider } from '../../../providers/file/provider.js';

const run = promisify(execFile);

let base: string;
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'steward-held-'));
});
after(() => rm(base, { recursive: true, force: true }));

async function withRoot<T>(name: string, fn: (root: HeldDir, path: string) => Promise<T>): Promise<T> {
  const path = join(base, name);
  await mkdir(path);
  const root = await openRoot(path);
  try {
    return await fn(root, path);
  } finally {
    await root.close();
  }
}

const temps = async (dir: string) =>
  (await readdir(dir, { recursive: true })).filter((f) => f.split('/').pop()!.startsWith(TEMP_PREFIX));

test('a symlinked directory on the way is refused even when it points back inside the root', () =>
  withRoot('inside-link', async (root, path) => {
    await mkdir(join(path, 'real'));
    await symlink(join(path, 'real'), join(path, 'alias'));
    for (const create of [false, true])
      await assert.rejects(openParent(root, 'alias/x.conf', create), (e) => isStewardError(e, 'PATH_ESCAPE'));
    assert.deepEqual(await readdir(join(path, 'real')), [], 'nothing created through the link');
  }));

test('the final name: a symlink, a directory and a FIFO are not regular files, checked on the handle', () =>
  withRoot('final', async (root, path) => {
    await writeFile(join(path, 'target'), 'x');
    await symlink(join(path, 'target'), join(path, 'link'));
    await mkdir(join(path, 'dir'));
    await run('mkfifo', [join(path, 'fifo')]);
    for (const name of ['link', 'dir', 'fifo'])
      await assert.rejects(openRegular(root, name, name), (e) => isStewardError(e, 'FILE_NOT_REGULAR'), name);
    assert.equal(await openRegular(root, 'absent', 'absent'), null);
  }));

test('missing parents are created one by one, each opened without following', () =>
  withRoot('mkdir', async (root, path) => {
    const parent = await openParent(root, 'a/b/c/x.conf', true);
    assert.ok(parent);
    try {
      await writeIn(parent, 'x.conf', 'X\n', 0o640);
    } finally {
      await parent.close();
    }
    assert.equal(await readFile(join(path, 'a/b/c/x.conf'), 'utf8'), 'X\n');
    assert.equal((await stat(join(path, 'a/b/c/x.conf'))).mode & 0o777, 0o640, 'the mode, not the umask');
    assert.equal(await openParent(root, 'q/r/x.conf', false), null, 'absent without creating');
    await assert.rejects(stat(join(path, 'q')), { code: 'ENOENT' });
  }));

test('a failed rename, or a swap detected before it, leaves no temp file', () =>
  withRoot('fail', async (root, path) => {
    await mkdir(join(path, 'busy'));
    await writeFile(join(path, 'busy', 'keep'), 'k');
    await assert.rejects(writeIn(root, 'busy', 'X\n', 0o644), { code: 'EISDIR' });
    await assert.rejects(
      writeIn(root, 'new.conf', 'X\n', 0o644, async () => {
        throw new Error('swapped');
      }),
      /swapped/,
    );
    await assert.rejects(stat(join(path, 'new.conf')), { code: 'ENOENT' });
    assert.deepEqual(await temps(path), []);
  }));

test('a full disk (ENOSPC) leaves no temp file', async (t) => {
  const mnt = join(base, 'full');
  await mkdir(mnt);
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
  } catch {
    t.skip('cannot mount a small tmpfs here (needs root)');
    return;
  }
  t.after(() => run('umount', [mnt]));
  const root = await openRoot(mnt);
  try {
    await assert.rejects(writeIn(root, 'big.conf', 'x'.repeat(1 << 20), 0o644), { code: 'ENOSPC' });
  } finally {
    await root.close();
  }
  assert.deepEqual(await readdir(mnt), [], 'neither the file nor its temp');
});

test('without /proc/self/fd the provider refuses to start, with a coded error', async () => {
  assert.throws(
    () => assertProcFd(join(base, 'no-proc')),
    (e) => isStewardError(e, 'FILE_PROC_UNAVAILABLE'),
  );
  assert.throws(
    () => new FileProvider({ root: base, procFd: join(base, 'no-proc') }),
    (e) => isStewardError(e, 'FILE_PROC_UNAVAILABLE') && /Linux/.test(e.message),
  );
});
