/**
 * docs/getting-started.md as a new user runs it: every ```sh block, in order,
 * from the root of the clone (only `.getting-started` and its port are
 * pointed elsewhere). The agent of step 3 runs in the background; each later
 * command is retried until it gives what the guide says (its state comes a
 * cycle later), within a bound.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { until } from '../helpers/agent-process.js';
import { freePort } from '../helpers/moto.js';

function bash(script: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) =>
    execFile('bash', ['-c', script], { timeout: 60_000 }, (e, out, err) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }),
    ),
  );
}

test('docs/getting-started.md: plan, observe, the first-start freeze, approve, enforce — as written', async (t) => {
  const doc = await readFile('docs/getting-started.md', 'utf8');
  const dir = await mkdtemp(join(tmpdir(), 'steward-gs-'));
  const port = await freePort();
  const here = (s: string) =>
    s.replaceAll('.getting-started', join(dir, 'gs')).replaceAll('127.0.0.1:7421', `127.0.0.1:${port}`);
  const blocks = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => here(m[1]!));
  let agent: ReturnType<typeof spawn> | undefined;
  let agentErr = '';
  t.after(async () => {
    // The agent's own process group (npx and the node it starts), by its id.
    if (agent?.pid !== undefined && agent.exitCode === null) process.kill(-agent.pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  const config = join(dir, 'gs', 'steward.yaml');
  const expectations: Array<[RegExp, (out: string) => boolean]> = [];
  let sha = '';
  let statusSeen = 0;
  /** What each command must give before the guide moves on (retried until it does). */
  const expect = (line: string, out: string): boolean => {
    if (/ status /.test(line))
      return statusSeen === 0
        ? out.includes(`steward approve ${sha} -c ${config}`) && /^frozen +yes, .*mass-drift halt/m.test(out)
        : /^frozen +no$/m.test(out) && /^mode +observe/m.test(out);
    if (/ drift /.test(line))
      return /^File\/motd +etc\/motd +drifted +(mass-drift|frozen) .* create$/m.test(out);
    if (/ audit /.test(line)) return /^\d+s ago +applied +File\/motd +etc\/motd /m.test(out);
    for (const [re, ok] of expectations) if (re.test(line)) return ok(out);
    return true;
  };

  assert.ok(blocks.length >= 6, 'the guide has its steps');
  for (const block of blocks) {
    if (/\bsteward run\b/.test(block)) {
      agent = spawn('bash', ['-c', block.trim()], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      agent.stderr!.on('data', (d: Buffer) => {
        agentErr += d.toString();
      });
      continue;
    }
    if (block.includes('<<')) {
      // A heredoc: the block is one script.
      const r = await bash(`set -e\n${block}`);
      assert.equal(r.code, 0, `${block}\n${r.err}`);
      sha = (await bash(`git -C ${join(dir, 'gs', 'desired')} rev-parse HEAD`)).out.trim();
      continue;
    }
    for (const line of block.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'))) {
      const command = line.replace(/\s+#.*$/, '');
      const want = / plan /.test(line) ? 2 : 0;
      let last = { code: -1, out: '', err: '' };
      await until(
        async () => {
          last = await bash(command);
          return last.code === want && expect(line, last.out);
        },
        `${line} (exit ${want})`,
        60_000,
      ).catch((e: Error) => {
        throw new Error(`${e.message}; last: exit ${last.code}\n${last.out}${last.err}\nagent: ${agentErr}`);
      });
      if (/ status /.test(line)) statusSeen++;
    }
  }
  assert.ok(agent, 'the guide runs the agent');
  // The log line of the first start said what to run (step 3).
  assert.ok(agentErr.includes(`steward approve ${sha} -c ${config}`), agentErr);
  assert.equal(statusSeen, 2);
});
