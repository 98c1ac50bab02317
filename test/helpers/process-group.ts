/** Which processes of a process group are still alive: to check that a killed group left nothing behind. */
import { readdir, readFile } from 'node:fs/promises';

/** Live (not zombie) processes whose process group is `pgid`, read from /proc (Linux). */
export async function liveGroupMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid pgrp …: comm may hold spaces, so split after its closing parenthesis
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') out.push(Number(name));
  }
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
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (stat === '') return false;
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
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
