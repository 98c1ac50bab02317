/**
 * Finding what a command check left running outside its process group. A check's process group is killed
 * when it ends (agent/health/command.ts), but a process that starts a session of its own (`setsid`, a
 * daemonising double fork) leaves that group and is reparented away from the check. What it keeps is its
 * environment: every check run gets a variable with a random token ({@link RUN_MARKER}), and after the run
 * every process whose initial environment holds that very token is killed. Linux (/proc); elsewhere nothing
 * is found.
 *
 * Not a sandbox: a process that re-executes itself with a scrubbed environment (`env -i`) is not found.
 * The token is random per run, so nothing but that run's descendants is ever matched.
 */
import { readdir, readFile } from 'node:fs/promises';
import { nodeCrypto } from '../../core/builtins.js';

/** The variable that marks a check run's processes. */
export const RUN_MARKER = 'STEWARD_CHECK_RUN';

/** A fresh token for one run, and the `NAME=token` entry as /proc/<pid>/environ holds it. */
export function runToken(): { value: string; entry: Buffer } {
  const value = nodeCrypto().randomBytes(16).toString('hex');
  return { value, entry: Buffer.from(`${RUN_MARKER}=${value}\0`) };
}

/** Passes over /proc before giving up on a run whose processes keep forking (each pass kills what it finds). */
const MAX_PASSES = 8;
/** /proc entries read at once. */
const CONCURRENCY = 32;

async function marked(pid: string, entry: Buffer, proc: string): Promise<boolean> {
  try {
    // The token is random per run: only a process that inherited it (or was handed it) can hold it.
    return (await readFile(`${proc}/${pid}/environ`)).includes(entry);
  } catch {
    return false; // gone, or another user's (unreadable): not this run's
  }
}

/** The pids (other than this process) whose environment carries `entry`. */
async function find(entry: Buffer, proc: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(proc);
  } catch {
    return []; // no /proc: nothing can be found this way
  }
  const pids = names.filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid);
  const found: number[] = [];
  for (let i = 0; i < pids.length; i += CONCURRENCY) {
    const chunk = pids.slice(i, i + CONCURRENCY);
    const hits = await Promise.all(chunk.map((p) => marked(p, entry, proc)));
    for (const [j, hit] of hits.entries()) if (hit) found.push(Number(chunk[j]));
  }
  return found;
}

/**
 * Kills (SIGKILL) every process still carrying the run's token, pass after pass until a pass finds none
 * (what forks meanwhile is found by the next). Returns how many were killed. Never throws.
 */
export async function killMarked(entry: Buffer, proc = '/proc'): Promise<number> {
  let killed = 0;
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const pids = await find(entry, proc);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch {
        // exited meanwhile
      }
    }
  }
  return killed;
}
