/**
 * SPEC §11 end to end: ten `steward run` processes, each with its own file
 * root, one local repository, one real PostgreSQL. One freeze through any
 * agent's API stops all ten (0 actions) while each keeps reporting drift;
 * GET /v1/fleet lists them all; the unfreeze through another agent lets all
 * converge.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FleetView } from '../../agent/fleet/types.js';
import { killAllAgents } from '../helpers/agent-process.js';
import {
  cycleAll,
  desiredFiles,
  type Fleet,
  fileRepo,
  filesOf,
  startFleet,
  tamper,
  waitFor,
} from '../helpers/fleet.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';

const N = 10;
const NAMES = ['a', 'b', 'c'];
const DESIRED = desiredFiles(NAMES);

let pgServer: PgServer;
let fleet: Fleet;
let base: string;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'steward-fleet-e2e-'));
  pgServer = await startPostgres();
  const repo = await fileRepo(base, NAMES);
  fleet = await startFleet({
    n: N,
    pgUrl: pgServer.url,
    repo,
    guardrails: [
      // Every file of an agent drifts at once here: that is the test, not a mass tamper to halt on.
      'massDrift: { maxDrifted: 100, maxDriftedPercent: 100, minManaged: 100 }',
      'rateLimit: { actionsPerMinute: 60000, burst: 1000 }',
    ],
  });
});

after(async () => {
  killAllAgents();
  await fleet?.stop().catch(() => undefined);
  await pgServer?.destroy();
  await rm(base, { recursive: true, force: true });
});

const tamperAll = () => Promise.all(fleet.agents.map((a) => tamper(a.root, NAMES)));

interface Status {
  freeze: { frozen: boolean; reason: string | null };
  lastCycle: { applied: number };
}

const auditCount = async () =>
  (await fleet.agents[0]!.req<{ records: unknown[] }>('GET', '/v1/audit?limit=1000')).json.records.length;

test('one freeze through any agent stops all ten; each keeps reporting drift; unfreeze converges all', async () => {
  const { agents } = fleet;
  // Start: every agent converges its own root on the revision.
  await Promise.all(
    agents.map((a) =>
      waitFor(
        async () => JSON.stringify(await filesOf(a.root)) === JSON.stringify(DESIRED),
        `${a.id} converged at start`,
        120_000,
      ),
    ),
  );

  await cycleAll(agents); // the verify cycle: a tamper after it is new drift, not an apply that did not stick

  const froze = await agents[3]!.req('POST', '/v1/freeze', { reason: 'incident 7: hands off' });
  assert.equal(froze.status, 200);
  const acted = await auditCount();
  await tamperAll();
  for (let round = 0; round < 2; round++) {
    await cycleAll(agents);
    for (const a of agents) {
      const files = await filesOf(a.root);
      assert.deepEqual(
        Object.values(files),
        NAMES.map((n) => `${n} tampered\n`),
        `${a.id} acted while the fleet was frozen`,
      );
      const drift = (await a.req<{ drift: Array<{ name: string }> }>('GET', '/v1/drift')).json;
      assert.deepEqual(drift.drift.map((d) => d.name).sort(), NAMES, `${a.id} stopped reporting its drift`);
      const status = (await a.req<Status>('GET', '/v1/status')).json;
      assert.equal(status.freeze.frozen, true, `${a.id} does not show the fleet's freeze`);
      assert.equal(status.freeze.reason, 'incident 7: hands off');
      assert.equal(status.lastCycle.applied, 0);
    }
  }
  assert.equal(await auditCount(), acted, 'no audit record (not even an intent) while frozen');

  const view = (await agents[0]!.req<FleetView>('GET', '/v1/fleet')).json;
  assert.equal(view.backend, 'postgres');
  assert.deepEqual(
    view.agents.map((a) => a.id),
    agents.map((a) => a.id),
  );
  for (const a of view.agents) {
    assert.equal(a.alive, true);
    assert.equal(a.drifted, NAMES.length, `${a.id}'s heartbeat shows its drift`);
    assert.equal(a.frozen, true);
    assert.equal(a.healthy, true);
  }

  const lifted = await agents[7]!.req('POST', '/v1/unfreeze', {});
  assert.equal(lifted.status, 200);
  await cycleAll(agents);
  for (const a of agents)
    assert.deepEqual(
      await filesOf(a.root),
      DESIRED,
      `${a.id} did not converge: ${JSON.stringify((await a.req('GET', '/v1/status')).json)}`,
    );
  assert.equal(await auditCount(), acted + 2 * N * NAMES.length, 'one intent and one outcome per action');
});
