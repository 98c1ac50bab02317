/**
 * The command check: runs `argv` (no shell) and passes when it exits 0.
 *
 * - The program runs in a process group of its own (a new session), so a
 *   timeout or a stop kills the whole group: a shell script's children too.
 *   Once the program has exited, whatever it left behind in its group is
 *   killed as well, and so is every process that left the group but still
 *   carries the run's random token in its environment (`setsid`, a
 *   daemonising fork: ./sweep.ts): a check leaves nothing running.
 * - Its output goes nowhere (stdin, stdout and stderr are /dev/null): a check
 *   script that prints a token cannot leak it into a log, a detail or an
 *   alert. The detail is the exit code or signal only; run the command by
 *   hand to see what it says.
 * - Its environment is a short list of harmless variables (PATH, HOME, LANG,
 *   …), not the agent's: the agent's environment may hold the secrets that
 *   `passwordEnv` / `secretEnv` name.
 */
import { spawn } from 'node:child_process';
import { deadline, STOPPED } from './request.js';
import { killMarked, RUN_MARKER, runToken } from './sweep.js';
import type { HealthCheckSpec, HealthProbeResult } from './types.js';

export type CommandCheckSpec = Extract<HealthCheckSpec, { kind: 'command' }>;

/** The variables a check command gets from the agent's environment, when set. */
export const PASSED_ENV = Object.freeze([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'LC_ALL',
  'TZ',
  'TMPDIR',
]);

const SPAWN_ERRORS: Record<string, string> = {
  ENOENT: 'no such program (or its directory does not exist)',
  EACCES: 'permission denied (is it executable?)',
  ENOEXEC: 'not an executable format',
};

function checkEnv(from: NodeJS.ProcessEnv, token: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of PASSED_ENV) if (from[k] !== undefined) env[k] = from[k];
  env['PATH'] ??= '/usr/local/bin:/usr/bin:/bin';
  env[RUN_MARKER] = token; // what finds the run's processes that left its group (./sweep.ts)
  return env;
}

/** Kills the process group led by `pid` (ESRCH — nobody left — is fine). */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is gone already
  }
}

export function runCommandCheck(
  spec: CommandCheckSpec,
  stop?: AbortSignal,
  env: NodeJS.ProcessEnv = process.env,
): Promise<HealthProbeResult> {
  const d = deadline(spec.timeoutMs, stop);
  const [program = '', ...args] = spec.argv;
  const token = runToken();
  return new Promise((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(program, args, {
        cwd: spec.cwd,
        env: checkEnv(env, token.value),
        stdio: 'ignore',
        detached: true,
        shell: false,
        windowsHide: true,
      });
    } catch (e) {
      d.done();
      resolve({ ok: false, detail: `cannot run: ${codeOf(e)}` });
      return;
    }
    const onAbort = () => {
      if (child.pid !== undefined) killGroup(child.pid);
    };
    d.signal.addEventListener('abort', onAbort, { once: true });
    const settle = (r: HealthProbeResult) => {
      d.signal.removeEventListener('abort', onAbort);
      d.done();
      resolve(r);
    };
    child.once('error', (e) => {
      if (child.pid !== undefined) killGroup(child.pid);
      const code = codeOf(e);
      settle({
        ok: false,
        detail: `cannot run: ${code}${SPAWN_ERRORS[code] ? ` (${SPAWN_ERRORS[code]})` : ''}`,
      });
    });
    child.once('exit', async (code, signal) => {
      if (child.pid !== undefined) killGroup(child.pid); // what it left behind in its group
      await killMarked(token.entry); // and what left the group (setsid, a daemonising fork)
      if (d.timedOut())
        settle({ ok: false, detail: `did not exit within ${d.shown}: its process group was killed` });
      else if (d.signal.aborted) settle({ ok: false, detail: STOPPED });
      else if (code === 0) settle({ ok: true, detail: 'exit 0' });
      else if (code !== null) settle({ ok: false, detail: `exit ${code}` });
      else settle({ ok: false, detail: `killed by ${signal ?? 'a signal'}` });
    });
    if (d.signal.aborted) onAbort();
  });
}

function codeOf(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'spawn failed';
}
