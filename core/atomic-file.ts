/**
 * Crash-safe file writes: write a temp file in the same directory, fsync it,
 * rename it over the target, fsync the directory. A reader sees the old
 * content or the new content, never a mix.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { nodeCrypto } from './builtins.js';

export const TEMP_PREFIX = '.steward-tmp-';

export async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

export async function writeFileAtomic(
  target: string,
  data: string | Uint8Array,
  mode = 0o644,
): Promise<void> {
  const dir = dirname(target);
  const tmp = join(dir, `${TEMP_PREFIX}${basename(target)}-${nodeCrypto().randomBytes(6).toString('hex')}`);
  const h = await open(tmp, 'wx', mode);
  try {
    await h.writeFile(data);
    await h.chmod(mode); // the umask must not weaken or widen what was asked
    await h.sync();
  } catch (e) {
    await h.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await h.close();
  try {
    await rename(tmp, target);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fsyncDir(dir);
}
