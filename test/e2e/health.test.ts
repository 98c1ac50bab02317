/**
 * Health checks in a real `steward run` process: an HTTP check against a
 * server the test flips 200 → 500 → 200. /v1/status, the metric and the alerts
 * follow, once per transition; the response body never reaches the log; and
 * SIGTERM stops a check in flight, killing its process group.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { killAllAgents, startAgentProcess } from '../helpers/agent-process.js';
import { createTestRepo } from '../helpers/git-repo.js';
import { liveGroupMembers, membersAfterKill } from '../helpers/process-group.js';

interface CheckView {
  name: string;
  ok: boolean;
  detail: string;
  at: string | null;
}
interface StatusHealth {
  ok: boolean;
  at: string | null;
  checks: CheckView[];
  pending: string[];
}

/** A loopback server for both sides: the service under check (`/healthz`) and the alert receiver (`/alerts`). */
async function startServer() {
  const state = { status: 200, checks: 0, alerts: [] as Array<{ event: string; status: string }> };
  const waiters: Array<() => void> = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/healthz') {
        state.checks++;
        res.writeHead(state.status).end('SECRET-BODY-never-logged');
      } else {
        const a = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { event: string; status: string };
        state.alerts.push({ event: a.event, status: a.status });
        res.end('ok');
      }
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    state,
    /** Resolves once `pred` holds, re-checked on every request the server answers. */
    async until(pred: () => boolean): Promise<void> {
      while (!pred()) await new Promise<void>((r) => waiters.push(r));
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

test('an HTTP check flipped 200 → 500 → 200: status, metric and one alert per transition; SIGTERM kills a check in flight', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-health-'));
  const srv = await startServer();
  const pidFile = join(base, 'slow-check.pid');
  t.after(async () => {
    killAllAgents();
    // a SIGKILLed agent cannot kill its checks: end the slow one here if the test failed early
    const pgid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (pgid > 1) for (const pid of await liveGroupMembers(pgid)) process.kill(pid, 'SIGKILL');
    await srv.close();
    await rm(base, { recursive: true, force: true });
  });
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  await repo.write(
    'fleet/a.yaml',
    'apiVersion: steward/v1\nkind: File\nmetadata: { name: a }\nspec: { path: a.conf, content: "a\\n" }\n',
  );
  await repo.commit('v1');
  const config = join(base, 'steward.yaml');
  await writeFile(
    config,
    [
      `source: { url: ${JSON.stringify(repo.workDir)}, ref: main, path: fleet, interval: 1h }`,
      'providers: { file: { root: managed } }',
      'reconcile: { interval: 1h, mode: observe }',
      'admin: { listen: "127.0.0.1:0" }',
      'state: { dir: state }',
      'log: { level: info }',
      `alerts: [{ url: "${srv.base}/alerts", events: [health_failing], timeout: 2s }]`,
      'health:',
      `  - { name: web, interval: 200ms, http: { url: "${srv.base}/healthz", timeout: 10s } }`,
      `  - { name: slow, interval: 1h, timeout: 1h, command: [sh, -c, "echo $$ > ${pidFile}; exec sleep 600"] }`,
      '',
    ].join('\n'),
  );
  await mkdir(join(base, 'managed'));
  const agent = startAgentProcess(['run', '-c', config]);
  const started = await new Promise<string>((resolve, reject) => {
    const onData = () => {
      const line = agent
        .stderr()
        .split('\n')
        .find((l) => l.includes('"steward started"'));
      if (line) {
        agent.child.stderr?.off('data', onData);
        resolve((JSON.parse(line) as { admin: string }).admin);
      }
    };
    agent.child.stderr?.on('data', onData);
    void agent.exited.then((code) => reject(new Error(`exited ${code}: ${agent.stderr()}`)));
  });
  const token = (await readFile(join(base, 'state', 'admin-token'), 'utf8')).trim();
  const health = async (): Promise<StatusHealth> => {
    const res = await fetch(`${started}/v1/status`, { headers: { authorization: `Bearer ${token}` } });
    return ((await res.json()) as { health: StatusHealth }).health;
  };
  const metric = async (): Promise<string | undefined> => {
    const text = await (await fetch(`${started}/metrics`)).text();
    return /^steward_health_check_ok\{check="web"\} (\d)$/m.exec(text)?.[1];
  };
  const web = async () => (await health()).checks.find((c) => c.name === 'web');
  /** Waits for the next `n` checks the agent sends, then reads. */
  const afterChecks = async <T>(n: number, read: () => Promise<T>): Promise<T> => {
    const target = srv.state.checks + n;
    await srv.until(() => srv.state.checks >= target);
    return read();
  };

  // Passing: the slow command is still pending, so the report as a whole is not ok yet.
  const view = await afterChecks(2, health);
  assert.deepEqual(
    view.checks.map((c) => [c.name, c.ok, c.detail]),
    [['web', true, 'HTTP 200']],
  );
  assert.equal(view.ok, false);
  assert.deepEqual(view.pending, ['slow']);
  assert.match(view.checks[0]?.at ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(await metric(), '1');

  // 500: failing in status and metric, one alert however many rounds fail.
  srv.state.status = 500;
  await srv.until(() => srv.state.alerts.length >= 1);
  assert.deepEqual((await web())?.ok, false);
  assert.equal((await web())?.detail, 'HTTP 500, expected 200');
  assert.equal(await metric(), '0');
  await afterChecks(2, async () => undefined);
  assert.deepEqual(srv.state.alerts, [{ event: 'health_failing', status: 'firing' }]);

  // 200 again: recovered, once.
  srv.state.status = 200;
  await srv.until(() => srv.state.alerts.length >= 2);
  assert.equal((await web())?.ok, true);
  assert.equal(await metric(), '1');
  await afterChecks(2, async () => undefined);
  assert.deepEqual(srv.state.alerts, [
    { event: 'health_failing', status: 'firing' },
    { event: 'health_recovered', status: 'resolved' },
  ]);

  // One warning line per transition; the response body never in the log.
  const lines = agent
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: string; msg: string });
  const transitions = lines.filter((l) => l.msg.startsWith('health_')).map((l) => [l.level, l.msg]);
  assert.deepEqual(transitions, [
    ['warn', 'health_failing'],
    ['warn', 'health_recovered'],
  ]);
  assert.ok(!agent.stderr().includes('SECRET-BODY'));

  // SIGTERM: the agent stops, and the slow check's process group with it.
  const pgid = Number((await readFile(pidFile, 'utf8')).trim());
  assert.ok((await liveGroupMembers(pgid)).length > 0, 'the slow check is running');
  agent.child.kill('SIGTERM');
  assert.equal(await agent.exited, 0, agent.stderr());
  assert.deepEqual(await membersAfterKill(pgid), []);
});
