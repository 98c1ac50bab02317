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
const SOURCE = 'source-a';
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
async function fleet(bakeMs = ROLLOUT.bakeMs) {
  const rollout = { ...ROLLOUT, bakeMs };
  const name = `gate_${++dbs}`;
  await server.createDatabase(name);
  const agents = new Map<string, { store: PgStateStore; registry: PgFleetRegistry }>();
  for (const id of IDS) {
    const pool = new pg.Pool({ connectionString: server.urlFor(name), max: 2 });
    pool.on('error', () => undefined); // the server's shutdown at the end
    pools.push(pool);
    const store = new PgStateStore({ pool, agentId: id, ownsPool: false });
    await store.load();
    const registry = new PgFleetRegistry(pool, { id, labels: {}, source: SOURCE }, ALIVE, rollout);
    await registry.register();
    agents.set(id, { store, registry });
  }
  const at = (id: string) => agents.get(id)!;
  const gate = (id: string, store = at(id).store) =>
    pgRolloutGate(store, id, rollout, ALIVE, SOURCE)(SHA, { approved: false, now: Date.now() });
  const q = (sql: string, params: unknown[] = []) => at(IDS[0]!).store.pool.query(sql, params);
  const frozen = async () =>
    (
      await at(IDS[0]!).store.pool.query<{ f: { reason: string; by: string } | null }>(
        'SELECT freeze_json AS f FROM fleet_control',
      )
    ).rows[0]!.f;
  return { at, gate, frozen, q };
}

/** fleet.massDrift at 50 %: the first two agents act on drift of `sha`; the third's answer. */
async function massDriftOfThree(f: Awaited<ReturnType<typeof fleet>>, sha: string) {
  const drift = (id: string) =>
    pgFleetMassDrift(
      f.at(id).store,
      id,
      50,
      ALIVE,
      10 * ALIVE,
      SOURCE,
    )(sha, { approved: false, now: Date.now() });
  assert.equal((await drift(IDS[0]!)).act, true);
  assert.equal((await drift(IDS[1]!)).act, true);
  return drift(IDS[2]!);
}

/** `n` more agents (`prefix-0` …) registered with `source`, each with heartbeat `hb`; their ids. */
async function agentsOf(
  f: Awaited<ReturnType<typeof fleet>>,
  source: string,
  prefix: string,
  n: number,
  hb: Heartbeat,
): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  for (const id of ids) {
    const r = new PgFleetRegistry(f.at(IDS[0]!).store.pool, { id, labels: {}, source }, ALIVE, ROLLOUT);
    await r.register();
    await r.heartbeat(hb);
  }
  return ids;
}

/** Every agent's heartbeat on the old revision (acting on nothing yet). */
async function onOldRevision(f: Awaited<ReturnType<typeof fleet>>): Promise<void> {
  for (const id of IDS)
    await f.at(id).registry.heartbeat(beat({ revision: 'a'.repeat(40), converged: false }));
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
  const late = new PgFleetRegistry(pool, { id: newcomer, labels: {}, source: SOURCE }, ALIVE, ROLLOUT);
  await late.register();
  await late.heartbeat(beat({ revision: 'a'.repeat(40) }));
  const g = await pgRolloutGate(
    f.at(IDS[0]!).store,
    newcomer,
    ROLLOUT,
    ALIVE,
    SOURCE,
  )(SHA, { approved: false, now: Date.now() });
  assert.equal(g.act, false, 'the newcomer does not become wave 0');
  assert.equal(g.wave, 3, 'a wave of its own after the plan');
  const waves = (await late.view()).rollout!.waves.map((w) => w.agents);
  assert.deepEqual(waves, [...planWaves(IDS, ROLLOUT.waves), [newcomer]]);
});

test('every heartbeat old (the database was down): the plan still holds every agent, not the first asker alone', async () => {
  const f = await fleet(3_600_000);
  await onOldRevision(f);
  await f.q(`UPDATE agents SET last_seen = now() - interval '10 minutes'`);
  await f.gate(IDS[2]!);
  const [row] = (await f.q('SELECT plan FROM rollouts')).rows as Array<{ plan: string[][] }>;
  assert.deepEqual(row?.plan, planWaves(IDS, ROLLOUT.waves));
  await onOldRevision(f); // they are back
  for (const id of IDS.filter((x) => x !== W0[0]))
    assert.equal((await f.gate(id)).act, false, `${id} waits for wave 0 (1 h bake)`);
});

test('the canary stops reporting in its open wave: the rollout halts, the next wave does not open', async () => {
  const f = await fleet(0);
  await onOldRevision(f);
  await f.gate(W0[0]!);
  await f.at(W0[0]!).registry.heartbeat(beat({ converged: false })); // on the revision, acting
  assert.equal((await f.gate(W1[0]!)).act, false);
  await f.q(`UPDATE agents SET last_seen = now() - interval '10 minutes' WHERE id = $1`, [W0[0]]); // its host died
  const g = await f.gate(W1[0]!);
  assert.equal(g.act, false, 'its silence opens nothing');
  assert.deepEqual(g.halt?.agents, [W0[0]]);
  assert.match((await f.frozen())?.reason ?? '', /not reporting/);
  // The operator looked and unfroze: the silent canary is acknowledged and holds nothing any more.
  await f.q('UPDATE fleet_control SET freeze_json = NULL');
  assert.equal((await f.gate(W1[0]!)).act, true);
});

test('a halt found under an operator freeze is not acknowledged by lifting that freeze', async () => {
  const f = await fleet(0);
  await onOldRevision(f);
  await f.gate(W0[0]!);
  await f.at(W0[0]!).registry.heartbeat(beat({ health: health(false) }));
  const maintenance = { reason: 'maintenance', by: 'ops', since: 1, until: null };
  await f.q('UPDATE fleet_control SET freeze_json = $1', [JSON.stringify(maintenance)]);
  const under = await f.gate(W1[0]!); // its cycle read "not frozen" just before the operator froze
  assert.equal(under.halt?.froze, false);
  const [r] = (await f.q('SELECT halted FROM rollouts')).rows as Array<{ halted: unknown }>;
  assert.equal(r?.halted, null, 'no halt recorded under a freeze it did not write');
  await f.q('UPDATE fleet_control SET freeze_json = NULL'); // the maintenance ends
  const after = await f.gate(W1[0]!);
  assert.equal(after.act, false, 'the failing canary still halts the rollout');
  assert.equal(after.halt?.froze, true);
});

test('two first askers race to pin the plan: the loser decides on the plan that won', async () => {
  const f = await fleet(3_600_000);
  await onOldRevision(f);
  // The loser's own view of the fleet differs (the others' heartbeats look old to it): its plan would be
  // itself alone, in wave 0.
  const loser = IDS.find((id) => id !== W0[0])!;
  await f.q(`UPDATE agents SET last_seen = now() - interval '10 minutes' WHERE id <> $1`, [loser]);
  const real = f.at(loser).store.pool;
  let raced = false;
  const racing = new Proxy(real, {
    get(t, k) {
      if (k === 'query')
        return async (sql: string, params?: unknown[]) => {
          if (!raced && sql.startsWith('UPDATE rollouts SET plan')) {
            raced = true;
            await f.q('UPDATE agents SET last_seen = now()'); // the others are back…
            await f.gate(W0[0]!); // …and one of them pins first
          }
          return t.query(sql, params);
        };
      const v = Reflect.get(t, k);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
  const store = new PgStateStore({ pool: racing as pg.Pool, agentId: loser, ownsPool: false });
  await store.load();
  const g = await f.gate(loser, store);
  assert.ok(raced);
  assert.equal(g.act, false, 'not wave 0 of its own plan');
  assert.equal(
    g.wave,
    planWaves(IDS, ROLLOUT.waves).findIndex((w) => w.includes(loser)),
  );
});

test('the fleet-wide mass drift freezes the fleet in its own transaction', async () => {
  const f = await fleet();
  for (const id of IDS) await f.at(id).registry.heartbeat(beat({ revision: 'a'.repeat(40) }));
  const third = await massDriftOfThree(f, SHA);
  assert.equal(third.act, false);
  assert.equal(third.halt?.kind, 'fleet_mass_drift');
  assert.match((await f.frozen())?.reason ?? '', /^fleet_mass_drift: 3 of 4 agents/);
});

test("agents of another source (same database) are neither in a revision's waves nor in its mass drift", async () => {
  const f = await fleet(0);
  // Six agents of another repository: they never take this revision.
  await agentsOf(f, 'source-b', 'db', 6, beat({ revision: 'c'.repeat(40) }));
  await onOldRevision(f);
  await f.gate(W0[0]!);
  const [row] = (await f.q('SELECT plan FROM rollouts')).rows as Array<{ plan: string[][] }>;
  assert.deepEqual(row?.plan, planWaves(IDS, ROLLOUT.waves), 'planned over the agents of this source');
  await f.at(W0[0]!).registry.heartbeat(beat({}));
  assert.equal((await f.gate(W1[0]!)).act, true, 'wave 1 opens: nobody of the other source holds it');
  // Mass drift, 50 % of this source's 4 agents: the third freezes (diluted by 6 others it would not).
  assert.equal((await massDriftOfThree(f, 'd'.repeat(40))).act, false);
});

test('two sources reaching one commit roll it out apart: one finished rollout opens nothing for the other', async () => {
  const f = await fleet(3_600_000);
  const prod = await agentsOf(
    f,
    'source-prod',
    'prod',
    4,
    beat({ revision: 'a'.repeat(40), converged: false }),
  );
  await onOldRevision(f);
  // Staging (this fleet's source) has completed SHA's rollout.
  await f.q(
    `INSERT INTO rollouts (source, revision, completed_at) VALUES ($1, $2, now())
     ON CONFLICT (source, revision) DO UPDATE SET completed_at = now()`,
    [SOURCE, SHA],
  );
  assert.equal((await f.gate(IDS[3]!)).act, true, "staging's rollout is complete");
  // Prod's ref reaches the same commit: its own rollout, wave by wave.
  const prodGate = (id: string) =>
    pgRolloutGate(
      f.at(IDS[0]!).store,
      id,
      ROLLOUT,
      ALIVE,
      'source-prod',
    )(SHA, { approved: false, now: Date.now() });
  const answers = [];
  for (const id of prod) answers.push((await prodGate(id)).act);
  assert.equal(answers.filter(Boolean).length, 1, `only prod's first wave acts: ${JSON.stringify(answers)}`);
});
