/**
 * One agent per state directory. A second agent on the same directory would
 * double every action and race on the state file, so it refuses to start.
 * A lock left by a dead process (kill -9, power loss) is taken over.
 */
import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { StewardError } from '../../core/errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface Lock {
  path: string;
  release(): Promise<void>;
}

/**
 * Fails with STATE_DIR_INVALID when `dir` (or a parent) exists but is not a
 * directory. Creates nothing, so a start can check it before anything else.
 */
export async function checkStateDir(dir: string): Promise<void> {
  const invalid = (what: string) =>
    new StewardError(
      'STATE_DIR_INVALID',
      `state.dir ${dir} ${what}; move it away or set state.dir to a directory`,
      { dir },
    );
  try {
    if (!(await stat(dir)).isDirectory()) throw invalid('is not a directory');
  } catch (e) {
    if (e instanceof StewardError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw invalid('has a parent that is not a directory');
    if (code !== 'ENOENT') throw e;
  }
}

export async function acquireLock(dir: string): Promise<Lock> {
  await checkStateDir(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'agent.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const h = await open(path, 'wx', 0o600);
      await h.writeFile(`${process.pid}\n`);
      await h.sync();
      await h.close();
      return { path, release: () => unlink(path).catch(() => undefined) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number.parseInt((await readFile(path, 'utf8').catch(() => '')).trim(), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid))
        throw new StewardError(
          'STATE_LOCKED',
          `another steward (pid ${pid}) is using the state directory ${dir}; stop it first, or give this agent its own state.dir`,
          { pid },
        );
      await unlink(path).catch(() => undefined); // stale: its owner is gone
    }
  }
  throw new StewardError(
    'STATE_LOCKED',
    `could not take the lock ${path}; remove it if no steward is running`,
  );
}
