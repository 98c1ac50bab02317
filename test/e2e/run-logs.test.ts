/**
 * `steward run`'s logs as a real process writes them on stderr: --log-format
 * json lines that parse, --log-level warn (or $STEWARD_LOG_LEVEL) hiding info
 * lines, the pretty format on request, and one warning per change — an
 * observe error names kind/name and code, once, not every cycle.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type AgentProcess, killAllAgents, startAgentProcess, until } from '../helpers/agent-process.js';
import { createTestRepo } from '../helpers/git-repo.js';
import { startDaemonHarness } from '../helpers/daemon.js';
import { createLogger } from '../../agent/log.js';

async function fixture(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), 'steward-run-logs-'));
  t.after(async () => {
    killAllAgents();
    await rm(base, { recursive: true, force: true });
  });
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  await repo.write(
    'fleet/motd.yaml',
    'apiVersion: steward/v1\nkind: File\nmetadata: { name: motd }\nspec: { path: etc/motd, content: "hi\\n" }\n',
  );
  await repo.commit('motd');
  // A directory where the file should be: an observe error (FILE_NOT_REGULAR) every cycle.
  await mkdir(join(base, 'managed', 'etc', 'motd'), { recursive: true });
  const config = join(base, 'steward.yaml');
  await writeFile(
    config,
    [
      `source: { url: ${JSON.stringify(repo.workDir)}, ref: main, path: fleet, interval: 1h }`,
      'providers: { file: { root: managed } }',
      'reconcile: { interval: 100ms, mode: enforce }',
      'guardrails: { soak: { observeCycles: 0 } }',
      'admin: { listen: "127.0.0.1:0" }',
      'state: { dir: state }',
      '',
    ].join('\n'),
  );
  return config;
}

const lines = (a: AgentProcess) =>
  a
    .stderr()
    .split('\n')
    .filter((l) => l !== '');

/** Waits for `n` lines matching `re`, then stops the agent (exit 0). */
async function runUntil(a: AgentProcess, re: RegExp, n: number): Promise<string[]> {
  await until(async () => lines(a).filter((l) => re.test(l)).length >= n, `${n} × ${re} in:\n${a.stderr()}`);
  a.child.kill('SIGTERM');
  assert.equal(await a.exited, 0, a.stderr());
  return lines(a);
}

test('run --log-format json: every stderr line is a JSON record; an observe error warns once, naming kind/name/code', async (t) => {
  const config = await fixture(t);
  const a = startAgentProcess(['run', '-c', config, '--log-format', 'json']);
  // Several cycles, each with the same observe error.
  const out = await runUntil(a, /"msg":"cycle"/, 4);
  const records = out.map((l) => JSON.parse(l) as { level: string; msg: string });
  const warned = records.filter((r) => r.msg.includes('could not be observed'));
  assert.equal(warned.length, 1, 'once, not every cycle');
  assert.equal(warned[0]!.level, 'warn');
  assert.equal(
    warned[0]!.msg,
    '1 resource could not be observed, held (never treated as missing): File/motd (FILE_NOT_REGULAR)',
  );
  assert.ok(
    records.some((r) => r.level === 'info'),
    'info lines at the default level',
  );
});

test('run --log-level warn hides info lines; $STEWARD_LOG_LEVEL does the same; --log-format pretty writes readable lines', async (t) => {
  const config = await fixture(t);
  const a = startAgentProcess(['run', '-c', config, '--log-format', 'json', '--log-level', 'warn']);
  const out = await runUntil(a, /could not be observed/, 1);
  const records = out.map((l) => JSON.parse(l) as { level: string; msg: string });
  assert.deepEqual(
    records.filter((r) => r.level === 'info' || r.level === 'debug'),
    [],
    'no info line (not even "stopping")',
  );

  process.env['STEWARD_LOG_LEVEL'] = 'warn';
  let b: AgentProcess;
  try {
    b = startAgentProcess(['run', '-c', config, '--log-format', 'pretty']);
  } finally {
    delete process.env['STEWARD_LOG_LEVEL'];
  }
  const pretty = await runUntil(b, /could not be observed/, 1);
  for (const l of pretty)
    assert.match(l, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z (WARN |ERROR|FATAL) \S/, l);
  assert.ok(
    pretty.some((l) =>
      / WARN {2}1 resource could not be observed, .*File\/motd \(FILE_NOT_REGULAR\)/.test(l),
    ),
  );
  assert.ok(!pretty.some((l) => l.startsWith('{')), 'no JSON lines');
});

test('held cycles warn once when they start (frozen, with the reason) and say when they end', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-held-logs-'));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  await repo.write(
    'fleet/a.yaml',
    'apiVersion: steward/v1\nkind: File\nmetadata: { name: a }\nspec: { path: a.conf, content: "a\\n" }\n',
  );
  await repo.commit('a');
  const records: Array<{ level: string; msg: string }> = [];
  const d = await startDaemonHarness({
    sourceUrl: repo.workDir,
    manual: true,
    log: createLogger('info', { write: (l: string) => void records.push(JSON.parse(l)) }, { format: 'json' }),
  });
  t.after(async () => {
    await d.stop();
    await rm(base, { recursive: true, force: true });
  });
  const cycle = async () => {
    await d.daemon.agent.refresh(true);
    await d.daemon.agent.idle();
  };
  const said = (re: RegExp) => records.filter((r) => re.test(r.msg));
  await cycle();
  assert.deepEqual(said(/held/), []);
  await d.req('POST', '/v1/freeze', { body: { reason: 'incident 7' } });
  await cycle();
  await cycle();
  await cycle();
  assert.deepEqual(said(/held/), [
    {
      ...said(/held/)[0]!,
      level: 'warn',
      msg: 'cycles held, frozen by admin-api: incident 7: drift is detected, nothing is applied',
    },
  ]);
  await d.req('POST', '/v1/unfreeze');
  await cycle();
  await cycle();
  assert.deepEqual(
    said(/held/).map((r) => `${r.level} ${r.msg}`),
    [
      'warn cycles held, frozen by admin-api: incident 7: drift is detected, nothing is applied',
      'info cycles no longer held: acting again',
    ],
  );
});
