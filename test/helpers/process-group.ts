/** Which processes of a process group are still alive: to check that a killed group left nothing behind. */
import { readdir, readFile } from 'node:fs/promises';

/** `state ppid pgrp …` of /proc/<pid>/stat, split after comm (which may hold spaces); [] when it is gone. */
async function statFields(pid: number | string): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat === '' ? [] : stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

const pids = async (): Promise<string[]> => (await readdir('/proc')).filter((n) => /^\d+$/.test(n));

/** Live (not zombie) processes whose process group is `pgid`, read from /proc (Linux). */
export async function liveGroupMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await pids()) {
    const [state, , pgrp] = await statFields(name);
    if (Number(pgrp) === pgid && state !== 'Z') out.push(Number(name));
  }
  return out;
}

/** The processes whose parent is `pid`, read from /proc (Linux). */
export async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await pids()) if (Number((await statFields(name))[1]) === pid) out.push(Number(name));
  return out;
}

/**
 * The members of `pgid` still alive once a SIGKILL sent to the group has had its effect: a kill is
 * delivered asynchronously, so the group is polled (bounded) until it is empty; what is still there after
 * `timeoutMs` is returned (and fails the caller's assertion).
 */
export async function membersAfterKill(pgid: number, timeoutMs = 5_000): Promise<number[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const live = await liveGroupMembers(pgid);
    if (live.length === 0 || Date.now() > end) return live;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Whether `pid` runs (a zombie, killed but not yet reaped by its new parent, does not). */
export async function running(pid: number): Promise<boolean> {
  const [state] = await statFields(pid);
  return state !== undefined && state !== 'Z';
}

/** Whether `pid` still runs once a SIGKILL sent to it has had its effect (polled, bounded like {@link membersAfterKill}). */
export async function runningAfterKill(pid: number, timeoutMs = 5_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (!(await running(pid))) return false;
    if (Date.now() > end) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
}
