/**
 * The PostgreSQL backend's cost for a fleet: 1,000 simulated agents (each its
 * own PgStateStore and heartbeat, as an agent process has) against ONE real
 * PostgreSQL server, all cycling at once. Per agent and cycle it counts the
 * coordination queries (every statement sent, BEGIN/COMMIT included) and
 * times the coordination part of a cycle (refresh, write-ahead, outcome
 * audit, save, heartbeat) — detection and apply are the same as with files.
 *
 * Two cases: an idle cycle (nothing drifted: refresh + heartbeat), and an
 * acting cycle (one File reverted: refresh, write-ahead, its outcome, save,
 * heartbeat). Agents share a few pools here (a server has a connection limit;
 * 1,000 real agents with poolSize 4 would need a pooler such as PgBouncer in
 * transaction mode, which this store's one-transaction-per-step use allows).
 *
 *   node --import tsx bench/run.ts --only fleet
 */
import pg from 'pg';
import { PgFleetRegistry } from '../agent/fleet/registry.js';
import { pgRolloutGate, type RolloutGateFn } from '../agent/fleet/rollout-gate.js';
import { createPgPool, PgStateStore } from '../agent/state/pg-store.js';
import type { AuditRecord, PersistedState } from '../agent/state/types.js';
import { startPostgres } from '../test/helpers/postgres.js';
import type { Benchmark, Row } from './types.js';

const NAME = 'fleet';
const AGENTS = 1_000;
const POOLS = 16;
const POOL_SIZE = 4;
const ROUNDS = 5;

/** Counts every statement the pg clients send while `on`. */
function countQueries(): { count(): number; reset(): void; restore(): void } {
  const proto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
  const original = proto.query;
  let n = 0;
  proto.query = function (this: unknown, ...args: unknown[]) {
    n++;
    return original.apply(this, args);
  };
  return {
    count: () => n,
    reset: () => {
      n = 0;
    },
    restore: () => {
      proto.query = original;
    },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface SimAgent {
  store: PgStateStore;
  registry: PgFleetRegistry;
  state: PersistedState;
  gate: RolloutGateFn;
}

/** The rollout the gated case runs: waves of 1, 10 % and the rest, no bake. */
const ROLLOUT = { waves: [1, '10%', '100%'], bakeMs: 0 };
const ALIVE_MS = 90_000;

function intent(agent: string, round: number, outcome: AuditRecord['outcome']): AuditRecord {
  return {
    at: new Date().toISOString(),
    revision: 'r'.repeat(40),
    kind: 'File',
    name: 'motd',
    id: null,
    patch: [],
    outcome,
    action: `${agent}-${round}`,
    durationMs: 0,
  };
}

/** Time spent in the rollout gate per call (the gated case). */
const gateMs: number[] = [];

/** One agent's coordination of a cycle; `act`: one File reverted; `gated`: asked the rollout gate first. */
async function cycle(a: SimAgent, round: number, act: boolean, gated = false): Promise<number> {
  const t0 = performance.now();
  a.state = await a.store.refresh(a.state);
  const now = Date.now();
  if (gated) {
    const g0 = performance.now();
    await a.gate(`${round}`.padStart(40, 'g'), { approved: false, now });
    gateMs.push(performance.now() - g0);
  }
  if (act) {
    const record = { attempts: 1, cyclesActedDrifted: 1, stuck: false, nextAttemptAt: now + 30_000 };
    const r = await a.store.writeAhead({
      resources: { 'File/motd': record },
      keys: ['File/motd'],
      intents: [intent(a.store.agentId, round, 'started')],
      initialMode: 'enforce',
      rateLimit: { actionsPerMinute: 1e9, burst: 1e9 },
      now,
    });
    if (r.kind !== 'written' || r.granted !== 1) throw new Error(`write-ahead: ${JSON.stringify(r)}`);
    await a.store.appendAudit([intent(a.store.agentId, round, 'applied')]);
    a.state = {
      ...a.state,
      resources: { 'File/motd': { attempts: 0, cyclesActedDrifted: 0, stuck: false, appliedAt: now } },
    };
  }
  await a.store.save(a.state);
  await a.registry.heartbeat({
    revision: 'r'.repeat(40),
    lastCycleAt: now,
    drifted: act ? 1 : 0,
    converged: !act,
    healthCurrent: true,
    stuck: 0,
    frozen: false,
    health: { ok: true, at: null, checks: [] },
  });
  return performance.now() - t0;
}

export const fleet: Benchmark = {
  name: NAME,
  description: `PostgreSQL backend: coordination queries and time per agent cycle, ${AGENTS} simulated agents on one server`,
  async run(ctx) {
    ctx.progress(`${NAME}: starting PostgreSQL`);
    const server = await startPostgres({ settings: { max_connections: String(POOLS * POOL_SIZE + 20) } });
    const pools = Array.from({ length: POOLS }, (_, i) =>
      createPgPool(
        { url: server.url, password: null, poolSize: POOL_SIZE, connectTimeoutMs: 10_000 },
        `bench-${i}`,
      ),
    );
    const counter = countQueries();
    try {
      const agents: SimAgent[] = [];
      for (let i = 0; i < AGENTS; i++) {
        const id = `host-${String(i).padStart(4, '0')}`;
        const pool = pools[i % POOLS]!;
        const store = new PgStateStore({ pool, agentId: id, ownsPool: false });
        const registry = new PgFleetRegistry(pool, { id, labels: { role: 'web' } }, ALIVE_MS, ROLLOUT);
        const gate = pgRolloutGate(store, id, ROLLOUT, ALIVE_MS);
        agents.push({ store, registry, state: await store.load(), gate });
        await registry.register();
      }
      const rows: Row[] = [];
      const cases = [
        { act: false, gated: false, caseName: 'idle cycle' },
        { act: true, gated: false, caseName: 'acting cycle (1 File)' },
        { act: true, gated: true, caseName: 'acting cycle + rollout gate' },
      ];
      for (const { act, gated, caseName } of cases) {
        ctx.progress(`${NAME}: ${caseName} × ${AGENTS} agents × ${ROUNDS} rounds`);
        const perAgent: number[] = [];
        const rounds: number[] = [];
        const queries: number[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          counter.reset();
          const t0 = performance.now();
          perAgent.push(...(await Promise.all(agents.map((a) => cycle(a, r, act, gated)))));
          rounds.push(performance.now() - t0);
          queries.push(counter.count() / AGENTS);
        }
        let alone = '';
        if (gated) {
          // One gate call at a time (as agents spread over reconcile.interval ask it): its own cost.
          const one: number[] = [];
          for (let i = 0; i < 50; i++) {
            const g0 = performance.now();
            await agents[i]!.gate('s'.repeat(40), { approved: false, now: Date.now() });
            one.push(performance.now() - g0);
          }
          alone = `; one call at a time: median ${median(one).toFixed(1)} ms`;
        }
        const fleetView = await agents[0]!.registry.view();
        if (fleetView.agents.length !== AGENTS)
          throw new Error(`GET /v1/fleet lists ${fleetView.agents.length}`);
        rows.push({
          benchmark: NAME,
          case: `${caseName}: per agent`,
          n: AGENTS,
          runs: perAgent.length,
          medianMs: median(perAgent),
          minMs: Math.min(...perAgent),
          maxMs: Math.max(...perAgent),
          rate: null,
          figure: `${median(queries)} queries/agent/cycle`,
          peakRssMiB: null,
          target: null,
          note: `all ${AGENTS} agents at once over ${POOLS * POOL_SIZE} connections: latency includes waiting for a connection${
            gated
              ? `; the gate (reads the rollout and all ${AGENTS} heartbeats, a new revision per round): median ${median(gateMs).toFixed(1)} ms with everyone at once${alone}`
              : ''
          }`,
        });
        rows.push({
          benchmark: NAME,
          case: `${caseName}: whole fleet round`,
          n: AGENTS,
          runs: ROUNDS,
          medianMs: median(rounds),
          minMs: Math.min(...rounds),
          maxMs: Math.max(...rounds),
          rate: (AGENTS * 1000) / median(rounds),
          rateUnit: 'agent-cycles',
          peakRssMiB: null,
          target: null,
        });
      }
      return rows;
    } finally {
      counter.restore();
      await Promise.all(pools.map((p) => p.end()));
      await server.destroy();
    }
  },
};
