/**
 * The rollout gate against a REAL PostgreSQL (test/helpers/postgres.ts), one
 * agent's view at a time: heartbeats written as the agents would, the gate
 * asked as each agent's cycle would ask it.
 *
 * - A halt freezes the fleet in the transaction that records it: there is no
 *   instant where another agent reads "halted on A" and the fleet unfrozen
 *   (the 10-process test once saw a second-wave agent act in that instant:
 *   the acknowledgement of A was taken as "accepted" before any unfreeze).
 * - Health results taken before an agent's last change neither halt nor open
 *   a wave (`healthCurrent: false`).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { type Heartbeat, PgFleetRegistry } from '../../../agent/fleet/registry.js';
import { pgFleetMassDrift, pgRolloutGate, ROLLOUT_ACTOR } from '../../../agent/fleet/rollout-gate.js';
import type { HealthReport } from '../../../agent/health/types.js';
import { PgStateStore } from '../../../agent/state/pg-store.js';
import { planWaves, rolloutOrder } from '../../../policies/rollout.js';
import { type PgServer, startPostgres } from '../../helpers/postgres.js';

let server: PgServer;
const pools: pg.Pool[] = [];
let dbs = 0;

before(async () => {
  server = await startPostgres();
});
after(async () => {
  await Promise.all(pools.splice(0).map((p) => p.end()));
  await server?.destroy();
});

const IDS = ['a-1', 'a-2', 'a-3', 'a-4'];
const ROLLOUT = { waves: [1, '50%', '100%'], bakeMs: 0 };
const ALIVE = 60_000;
const SHA = 'b'.repeat(40);
const [W0, W1] = planWaves(IDS, ROLLOUT.waves) as [string[], string[], string[]];

const health = (ok: boolean, startedAt = Date.now()): HealthReport => ({
  ok,
  at: startedAt + 1,
  checks: [
    {
      name: 'app-http',
      kind: 'http',
      ok,
      detail: ok ? 'HTTP 200' : 'HTTP 500',
      at: startedAt + 1,
      durationMs: 1,
    },
  ],
});
const beat = (over: Partial<Heartbeat>): Heartbeat => ({
  revision: SHA,
  lastCycleAt: Date.now(),
  drifted: 0,
  converged: true,
  stuck: 0,
  frozen: false,
  health: health(true),
  healthCurrent: true,
  ...over,
});

/** A fresh database with the state and agents schemas; per agent its store, registry and gates. */
async function fleet() {
  const name = `gate_${++dbs}`;
  await server.createDatabase(name);
  const agents = new Map<string, { store: PgStateStore; registry: PgFleetRegistry }>();
  for (const id of IDS) {
    const pool = new pg.Pool({ connectionString: server.urlFor(name), max: 2 });
    pool.on('error', () => undefined); // the server's shutdown at the end
    pools.push(pool);
    const store = new PgStateStore({ pool, agentId: id, ownsPool: false });
    await store.load();
    const registry = new PgFleetRegistry(pool, { id, labels: {} }, ALIVE, ROLLOUT);
    await registry.register();
    agents.set(id, { store, registry });
  }
  const at = (id: string) => agents.get(id)!;
  const gate = (id: string) =>
    pgRolloutGate(at(id).store, id, ROLLOUT, ALIVE)(SHA, { approved: false, now: Date.now() });
  const frozen = async () =>
    (
      await at(IDS[0]!).store.pool.query<{ f: { reason: string; by: string } | null }>(
        'SELECT freeze_json AS f FROM fleet_control',
      )
    ).rows[0]!.f;
  return { at, gate, frozen };
}

test('a halt freezes the fleet in the same transaction: no agent reads the halt and an unfrozen fleet', async () => {
  const f = await fleet();
  for (const id of IDS) await f.at(id).registry.heartbeat(beat({ revision: 'a'.repeat(40) }));
  await f.gate(W0[0]!); // the rollout of SHA starts
  await f.at(W0[0]!).registry.heartbeat(beat({ health: health(false) })); // wave 0 took it and fails

  const halting = await f.gate(W1[0]!);
  assert.equal(halting.act, false);
  assert.ok(halting.halt, 'the rollout halts');
  assert.equal(halting.halt.froze, true);
  const row = await f.frozen();
  assert.ok(row, 'the fleet is frozen before the halting agent saved anything');
  assert.equal(row.by, ROLLOUT_ACTOR);
  assert.match(row.reason, new RegExp(`^rollout_halted: .*agents ${W0[0]}; failing checks app-http$`));
  assert.deepEqual(halting.halt.freeze, row, 'the answer carries the freeze in force');

  // Another agent of the next wave asks at once (nobody unfroze): its wave stays closed.
  for (const id of IDS.filter((x) => x !== W0[0]))
    assert.equal((await f.gate(id)).act, false, `${id} (a later wave) may not act while the halt holds`);
  assert.equal((await f.gate(W0[0]!)).act, false);

  // Unfrozen (approveRevision): the agent it halted on is accepted, the next wave opens.
  await f.at(IDS[0]!).store.pool.query('UPDATE fleet_control SET freeze_json = NULL');
  const resumed = await f.gate(W1[0]!);
  assert.equal(resumed.halt, null, 'no second halt for the agent acknowledged');
  assert.equal(resumed.act, true, 'the rollout resumes after the unfreeze');
});

test('a halt keeps a freeze without an end; it replaces one that would end by itself', async () => {
  const f = await fleet();
  for (const id of IDS) await f.at(id).registry.heartbeat(beat({ revision: 'a'.repeat(40) }));
  await f.gate(W0[0]!);
  await f.at(W0[0]!).registry.heartbeat(beat({ health: health(false) }));
  const pool = f.at(IDS[0]!).store.pool;
  const incident = { reason: 'incident', by: 'ops', since: 1, until: null };
  await pool.query('UPDATE fleet_control SET freeze_json = $1', [JSON.stringify(incident)]);
  await pool.query('UPDATE rollouts SET halted = NULL');
  const kept = await f.gate(W1[0]!);
  assert.equal(kept.halt?.froze, false);
  assert.deepEqual(await f.frozen(), incident);

  await pool.query('UPDATE fleet_control SET freeze_json = $1', [
    JSON.stringify({ ...incident, until: Date.now() + 60_000 }),
  ]);
  const replaced = await f.gate(W1[0]!);
  assert.equal(replaced.halt?.froze, true);
  assert.equal((await f.frozen())?.by, ROLLOUT_ACTOR, 'a halt has no end: it outlasts a freeze for 1 minute');
});

test('health taken before the last change neither opens the next wave nor halts this one', async () => {
  const f = await fleet();
  for (const id of IDS) await f.at(id).registry.heartbeat(beat({ revision: 'a'.repeat(40) }));
  await f.gate(W0[0]!);
  const first = f.at(W0[0]!).registry;

  // Converged on the revision, healthy by a result from before the change: not done, not halted.
  await first.heartbeat(beat({ health: health(true), healthCurrent: false }));
  let g = await f.gate(W1[0]!);
  assert.deepEqual([g.act, g.halt], [false, null], 'stale passing results open nothing');

  await first.heartbeat(beat({ health: health(false), healthCurrent: false }));
  g = await f.gate(W1[0]!);
  assert.deepEqual([g.act, g.halt], [false, null], 'stale failing results halt nothing');
  assert.equal(await f.frozen(), null);

  // The fresh result counts: passing opens wave 1 (no bake here).
  const view = async () => (await first.view()).rollout!.waves.map((w) => w.openedAt);
  const [opened0, ...rest] = await view();
  assert.ok(opened0 && !Number.isNaN(Date.parse(opened0)), 'wave 0 opened when the rollout started');
  assert.deepEqual(rest, [null, null]);
  await first.heartbeat(beat({ health: health(true), healthCurrent: true }));
  g = await f.gate(W1[0]!);
  assert.equal(g.act, true, 'current passing results open the next wave');
  const [again0, opened1, opened2] = await view();
  assert.equal(again0, opened0, "wave 0's opening is kept");
  assert.ok(opened1 && Date.parse(opened1) >= Date.parse(opened0));
  assert.equal(opened2, null);
});

test('the plan is pinned when the rollout starts: an agent that joins later goes last', async () => {
  const f = await fleet();
  for (const id of IDS) await f.at(id).registry.heartbeat(beat({ revision: 'a'.repeat(40) }));
  await f.gate(W0[0]!); // the rollout of SHA starts: the plan is pinned
  const newcomer = Array.from({ length: 200 }, (_, i) => `new-${i}`).find(
    (id) => rolloutOrder([...IDS, id])[0] === id,
  )!;
  const pool = f.at(IDS[0]!).store.pool;
  const late = new PgFleetRegistry(pool, { id: newcomer, labels: {} }, ALIVE, ROLLOUT);
  await late.register();
  await late.heartbeat(beat({ revision: 'a'.repeat(40) }));
  const g = await pgRolloutGate(
    f.at(IDS[0]!).store,
    newcomer,
    ROLLOUT,
    ALIVE,
  )(SHA, { approved: false, now: Date.now() });
  assert.equal(g.act, false, 'the newcomer does not become wave 0');
  assert.equal(g.wave, 2);
  const waves = (await late.view()).rollout!.waves.map((w) => w.agents);
  assert.deepEqual(waves.slice(0, 2), [W0, W1]);
  assert.ok(waves[2]!.includes(newcomer));
});

test('the fleet-wide mass drift freezes the fleet in its own transaction', async () => {
  const f = await fleet();
  for (const id of IDS) await f.at(id).registry.heartbeat(beat({ revision: 'a'.repeat(40) }));
  const drift = (id: string) =>
    pgFleetMassDrift(f.at(id).store, id, 50, ALIVE, 10 * ALIVE)(SHA, { approved: false, now: Date.now() });
  assert.equal((await drift(IDS[0]!)).act, true);
  assert.equal((await drift(IDS[1]!)).act, true);
  const third = await drift(IDS[2]!);
  assert.equal(third.act, false);
  assert.equal(third.halt?.kind, 'fleet_mass_drift');
  assert.match((await f.frozen())?.reason ?? '', /^fleet_mass_drift: 3 of 4 agents/);
});
