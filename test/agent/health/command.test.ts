/** The command check with real processes: exit codes, spawn errors, the timeout killing the whole group, no output kept. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCommandCheck } from '../../../agent/health/command.js';
import { spawn } from 'node:child_process';
import { membersAfterKill, running, runningAfterKill } from '../../helpers/process-group.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'steward-cmd-'));
});
after(() => rm(dir, { recursive: true, force: true }));

const spec = (argv: string[], timeoutMs = 5_000) => ({
  name: 'app',
  kind: 'command' as const,
  intervalMs: 30_000,
  timeoutMs,
  argv,
  cwd: dir,
});

describe('command check', () => {
  it('passes on exit 0 and fails with the exit code otherwise', async () => {
    assert.deepEqual(await runCommandCheck(spec(['true'])), { ok: true, detail: 'exit 0' });
    assert.deepEqual(await runCommandCheck(spec(['false'])), { ok: false, detail: 'exit 1' });
    assert.deepEqual(await runCommandCheck(spec(['sh', '-c', 'exit 3'])), { ok: false, detail: 'exit 3' });
    assert.deepEqual(await runCommandCheck(spec(['sh', '-c', 'kill -SEGV $$'])), {
      ok: false,
      detail: 'killed by SIGSEGV',
    });
  });

  it('fails when the program cannot be run', async () => {
    assert.deepEqual(await runCommandCheck(spec([join(dir, 'no-such-check')])), {
      ok: false,
      detail: 'cannot run: ENOENT (no such program (or its directory does not exist))',
    });
    assert.deepEqual(await runCommandCheck(spec([dir])), {
      ok: false,
      detail: 'cannot run: EACCES (permission denied (is it executable?))',
    });
  });

  it('runs argv without a shell: metacharacters are plain arguments', async () => {
    const marker = join(dir, 'injected');
    assert.deepEqual(await runCommandCheck(spec(['echo', `; touch ${marker}`, '$(touch', `${marker})`])), {
      ok: true,
      detail: 'exit 0',
    });
    await assert.rejects(readFile(marker), { code: 'ENOENT' });
  });

  it('kills the whole process group on timeout (sleep 10 with a 200 ms timeout)', async () => {
    const pidFile = join(dir, 'group-leader');
    // the shell leads the group and leaves a background sleep; then it becomes `sleep 10` itself
    const script = `echo $$ > ${pidFile}; sleep 10 & exec sleep 10`;
    const r = await runCommandCheck(spec(['sh', '-c', script], 200));
    assert.deepEqual(r, { ok: false, detail: 'did not exit within 200ms: its process group was killed' });
    const pgid = Number((await readFile(pidFile, 'utf8')).trim());
    assert.ok(pgid > 1);
    assert.deepEqual(await membersAfterKill(pgid), []);
  });

  it('leaves nothing behind in its group after a normal exit', async () => {
    const pidFile = join(dir, 'leader-2');
    const r = await runCommandCheck(spec(['sh', '-c', `echo $$ > ${pidFile}; sleep 10 & exit 0`]));
    assert.deepEqual(r, { ok: true, detail: 'exit 0' });
    assert.deepEqual(await membersAfterKill(Number((await readFile(pidFile, 'utf8')).trim())), []);
  });

  it('keeps no output and passes none of the agent environment beyond the harmless variables', async () => {
    const noisy = ['sh', '-c', 'echo TOKEN-s3cret; echo TOKEN-s3cret >&2; test -z "$STEWARD_TEST_SECRET"'];
    const r = await runCommandCheck(spec(noisy), undefined, { ...process.env, STEWARD_TEST_SECRET: 'x' });
    assert.deepEqual(r, { ok: true, detail: 'exit 0' });
    const leaked = await runCommandCheck(spec(['sh', '-c', 'echo TOKEN-s3cret; exit 2']));
    assert.deepEqual(leaked, { ok: false, detail: 'exit 2' });
  });

  it('stops at once when the runner stops, killing the group', async () => {
    const pidFile = join(dir, 'leader-3');
    const stop = new AbortController();
    const running = runCommandCheck(
      spec(['sh', '-c', `echo $$ > ${pidFile}; exec sleep 10`], 60_000),
      stop.signal,
    );
    // wait for the shell to have started (the pid file is its first act)
    while ((await readFile(pidFile, 'utf8').catch(() => '')) === '')
      await new Promise((r) => setImmediate(r));
    stop.abort();
    assert.deepEqual(await running, { ok: false, detail: 'not finished: the agent is stopping' });
    assert.deepEqual(await membersAfterKill(Number((await readFile(pidFile, 'utf8')).trim())), []);
  });

  /** Runs `script` as a check; it writes the pid of a process that left its group to `pidFile` first. */
  async function escapee(script: string, pidFile: string): Promise<number> {
    const r = await runCommandCheck(spec(['sh', '-c', script]));
    assert.deepEqual(r, { ok: true, detail: 'exit 0' });
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    assert.ok(pid > 1);
    return pid;
  }

  const kill = (pid: number) => {
    try {
      process.kill(pid, 'SIGKILL'); // leave nothing running, whatever the verdict
    } catch {}
  };

  it('leaves nothing running even when a child moves to a session of its own (setsid)', async () => {
    const pidFile = join(dir, 'escaped');
    // The escapee writes its pid once in its own session; the check exits only after that.
    const pid = await escapee(
      `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 300' & while [ ! -s ${pidFile} ]; do :; done; exit 0`,
      pidFile,
    );
    const alive = await runningAfterKill(pid);
    kill(pid);
    assert.equal(alive, false, `pid ${pid} outlived its check`);
  });

  it('leaves nothing running after a daemonising double fork', async () => {
    const pidFile = join(dir, 'daemon');
    const pid = await escapee(
      `(setsid sh -c 'sh -c "echo \\$\\$ > ${pidFile}; exec sleep 300" &' &) ; while [ ! -s ${pidFile} ]; do :; done; exit 0`,
      pidFile,
    );
    const alive = await runningAfterKill(pid);
    kill(pid);
    assert.equal(alive, false, `pid ${pid} outlived its check`);
  });

  it("kills only the run's own processes: one with another run's marker survives", async () => {
    const other = spawn('sleep', ['300'], {
      env: { PATH: process.env['PATH'], STEWARD_CHECK_RUN: 'not-this-run' },
      stdio: 'ignore',
      detached: true,
    });
    try {
      assert.deepEqual(await runCommandCheck(spec(['true'])), { ok: true, detail: 'exit 0' });
      assert.equal(await running(other.pid!), true, 'an unrelated process was killed');
    } finally {
      kill(other.pid!);
    }
  });
});
