/**
 * PostgreSQL stopped mid-run (SPEC §9, §11): the agent acts on nothing, keeps
 * detecting, is unready, alerts `state_unwritable` once; an admin freeze taken
 * meanwhile holds in memory and reaches the database when it is back; once
 * unfrozen the agent converges and the alert resolves.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../agent/config.js';
import { type Daemon, startDaemon } from '../../agent/daemon.js';
import { silentLogger } from '../../agent/log.js';
import { agentConfig, desiredFiles, fileRepo, filesOf, tamper } from '../helpers/fleet.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';

const NAMES = ['a', 'b', 'c'];
const DESIRED = desiredFiles(NAMES);

let pgServer: PgServer;
let base: string;
let receiver: Server;
let daemon: Daemon;
const alerts: Array<{ event: string }> = [];

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'steward-pgdown-'));
  pgServer = await startPostgres();
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      alerts.push(JSON.parse(body) as { event: string });
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const addr = receiver.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const repo = await fileRepo(base, NAMES);
  await mkdir(join(base, 'managed'));
  const config = join(base, 'steward.yaml');
  await writeFile(
    config,
    agentConfig({
      repo,
      pgUrl: pgServer.url,
      admin: '{ listen: "127.0.0.1:0" }',
      agent: '{ id: solo }',
      extra: `alerts: [{ url: "http://127.0.0.1:${port}/hook", events: [state_unwritable, state_recovered] }]`,
    }),
  );
  daemon = await startDaemon(await loadConfig(config), { log: silentLogger, manual: true });
});

after(async () => {
  await daemon?.stop();
  await new Promise((r) => receiver?.close(r));
  await pgServer?.destroy();
  await rm(base, { recursive: true, force: true });
});

const root = () => join(base, 'managed');
const cycle = async () => {
  await daemon.agent.poll();
  await daemon.agent.trigger('test');
  return daemon.agent.lastCycle!;
};
const readyz = async () => (await fetch(`${daemon.admin.url}/readyz`)).status;
const count = (event: string) => alerts.filter((a) => a.event === event).length;

test('PostgreSQL down: 0 actions, detection goes on, unready, one alert; a freeze meanwhile survives; recovery', async () => {
  await cycle();
  await cycle(); // verify
  assert.deepEqual(await filesOf(root()), DESIRED);
  assert.equal(await readyz(), 200);

  await pgServer.stop();
  await tamper(root(), NAMES);
  for (let i = 0; i < 3; i++) {
    const r = await cycle();
    assert.equal(r.applied, 0);
    assert.equal(r.drifted, NAMES.length, 'detection goes on while PostgreSQL is down');
    assert.notEqual(r.stateError, null);
    assert.equal(r.held['state-unwritable'], NAMES.length, 'each drifted resource held: state-unwritable');
  }
  assert.deepEqual(
    Object.values(await filesOf(root())),
    NAMES.map((n) => `${n} tampered\n`),
  );
  assert.equal(await readyz(), 503);
  await daemon.alerter.drain(5_000);
  assert.equal(count('state_unwritable'), 1, 'one alert, not one per cycle');

  // An operator freezes while the database is down: it holds in memory (503 says it is not durable yet).
  await assert.rejects(daemon.agent.freeze('db incident', 'admin-api'), /could not be written/);
  assert.notEqual(daemon.agent.currentState.freeze, null);

  await pgServer.start();
  const back = await cycle();
  assert.equal(back.stateError, null);
  assert.equal(back.applied, 0, 'still frozen: the freeze taken while down holds');
  const rows = await pgServer.query<{ reason: string }>(
    "SELECT freeze_json->>'reason' AS reason FROM fleet_control",
  );
  assert.deepEqual(rows, [{ reason: 'db incident' }], 'and reached the database once it was back');
  assert.equal(await readyz(), 200);

  await daemon.agent.unfreeze('admin-api', null);
  const converged = await cycle();
  assert.equal(converged.applied, NAMES.length);
  assert.deepEqual(await filesOf(root()), DESIRED);
  await daemon.alerter.drain(5_000);
  assert.equal(count('state_unwritable'), 1);
  assert.equal(count('state_recovered'), 1);
  const audit = await daemon.agent.readAudit(100);
  assert.equal(audit.records.filter((r) => r.outcome === 'applied').length, 2 * NAMES.length);
});
