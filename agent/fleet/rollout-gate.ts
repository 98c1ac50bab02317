/**
 * Rollout waves wired to the fleet's PostgreSQL (SPEC §11 `fleet.rollout`):
 * before an agent acts on a revision, it asks the gate whether its wave is
 * open. The decision is `policies/rollout.ts`'s, over the agents' heartbeats
 * (alive agents, in a stable order); this module reads and records.
 *
 * - A revision's rollout starts the first time any agent asks about it
 *   (`rollouts` row) and completes once every wave is done: after that the
 *   gate is open for it (a later tamper on a finished revision is simply
 *   reverted, not rolled out again).
 * - A halt (an open wave's agent fails a check or does not converge) is
 *   returned to the caller, which freezes the fleet; it is recorded, and once
 *   the fleet is unfrozen (`approveRevision`) the rollout resumes: the agents
 *   it halted on do not halt it again, others still do.
 */
import type pg from 'pg';
import { inTransaction } from '../state/pg-store.js';
import {
  type AgentProgress,
  mayAct,
  planWaves,
  type RolloutDecision,
  rolloutGate,
  type WaveSize,
} from '../../policies/rollout.js';
import type { HealthReport } from '../health/types.js';

export interface GateAnswer {
  /** This agent may act on the revision now. */
  act: boolean;
  /** This agent's wave (0-based), null when it is not in the plan (not alive). */
  wave: number | null;
  /** Freeze the fleet: why (`kind`, default rollout_halted), the agents and checks concerned. */
  halt: {
    kind?: 'rollout_halted' | 'fleet_mass_drift';
    reason: string;
    agents: string[];
    checks: string[];
  } | null;
}

/**
 * What the reconciler asks before acting on `sha` (`approved`: an approval of `sha` is open, which
 * exempts it from the fleet-wide mass-drift halt as from the agent's own).
 */
export type RolloutGateFn = (sha: string, ctx: { approved: boolean }) => Promise<GateAnswer>;

interface Row {
  id: string;
  revision: string | null;
  converged: boolean;
  stuck: number;
  health: HealthReport | null;
  good_since_ms: number | null;
}

/** A rollout as the fleet stands now: its waves, the gate's decision, its halt so far. */
export interface RolloutAssessment {
  revision: string;
  completed: boolean;
  waves: string[][];
  decision: RolloutDecision;
  /** The agents a halt was taken for already (the fleet was unfrozen since: they do not halt it again). */
  acknowledged: string[];
  halted: { at: string; agents: string[]; checks: string[] } | null;
}

export interface RolloutConfig {
  waves: readonly WaveSize[];
  bakeMs: number;
}

/** Reads the rollout of `sha` (null when none started) and the alive agents' heartbeats, and decides. */
export async function assessRollout(
  pool: pg.Pool,
  sha: string,
  rollout: RolloutConfig,
  aliveMs: number,
  self?: string,
): Promise<RolloutAssessment | null> {
  const r = await pool.query<{
    completed: boolean;
    halted: RolloutAssessment['halted'];
    now_ms: number;
  }>(
    `SELECT completed_at IS NOT NULL AS completed, halted, (extract(epoch FROM now()) * 1000)::float8 AS now_ms
     FROM rollouts WHERE revision = $1`,
    [sha],
  );
  const ro = r.rows[0];
  if (!ro) return null;
  const rows = (
    await pool.query<Row>(
      `SELECT id, revision, converged, stuck, health,
              (extract(epoch FROM good_since) * 1000)::float8 AS good_since_ms
       FROM agents WHERE now() - last_seen < make_interval(secs => $1) OR id = $2`,
      [aliveMs / 1000, self ?? null],
    )
  ).rows;
  const waves = planWaves(
    rows.map((x) => x.id),
    rollout.waves,
  );
  const acknowledged = ro.halted?.agents ?? [];
  const ack = new Set(acknowledged);
  const progress = new Map<string, AgentProgress>(
    rows.map((x) => {
      const p: AgentProgress = {
        revision: x.revision,
        converged: x.converged,
        stuck: x.stuck > 0,
        healthy: x.health?.ok ?? true,
        failingChecks: (x.health?.checks ?? []).filter((c) => !c.ok).map((c) => c.name),
        goodSince: x.good_since_ms,
      };
      // Halted on already and unfrozen since: accepted as they are.
      return [x.id, ack.has(x.id) ? { ...p, healthy: true, stuck: false, goodSince: p.goodSince ?? 0 } : p];
    }),
  );
  const decision = rolloutGate({ revision: sha, waves, progress, bakeMs: rollout.bakeMs, now: ro.now_ms });
  return { revision: sha, completed: ro.completed, waves, decision, acknowledged, halted: ro.halted };
}

export function pgRolloutGate(
  pool: pg.Pool,
  self: string,
  rollout: RolloutConfig,
  aliveMs: number,
): RolloutGateFn {
  return async (sha, _ctx) => {
    await pool.query('INSERT INTO rollouts (revision) VALUES ($1) ON CONFLICT DO NOTHING', [sha]);
    const a = await assessRollout(pool, sha, rollout, aliveMs, self);
    if (!a || a.completed) return { act: true, wave: null, halt: null };
    const { waves, decision: d } = a;
    const wave = waves.findIndex((w) => w.includes(self));
    if (d.halt) {
      await pool.query(
        `UPDATE rollouts SET halted = jsonb_build_object('at', now(), 'agents', $2::jsonb, 'checks', $3::jsonb)
         WHERE revision = $1`,
        [sha, JSON.stringify([...a.acknowledged, ...d.halt.agents]), JSON.stringify(d.halt.checks)],
      );
      return { act: false, wave, halt: d.halt };
    }
    if (d.waves.every((w) => w.state === 'done'))
      await pool.query('UPDATE rollouts SET completed_at = now() WHERE revision = $1', [sha]);
    return { act: mayAct(self, waves, d), wave: wave < 0 ? null : wave, halt: null };
  };
}

/**
 * fleet.massDrift: the share of the fleet's alive agents that acted on drift of one revision within
 * `windowMs`. The agent about to act counts itself; if that takes the share past `maxDriftedPercent`
 * the fleet freezes (`fleet_mass_drift`) before it acts, so a bad push stops after that share of the
 * fleet took it even when each agent alone saw too little drift to halt. Serialised per revision (a
 * transaction-level advisory lock) so agents acting at once cannot all slip under the limit.
 */
export function pgFleetMassDrift(
  pool: pg.Pool,
  self: string,
  maxDriftedPercent: number,
  aliveMs: number,
  windowMs: number,
): RolloutGateFn {
  return async (sha, ctx) => {
    const open: GateAnswer = { act: true, wave: null, halt: null };
    if (ctx.approved) return open;
    return inTransaction(pool, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock(hashtext('steward-drift:' || $1))", [sha]);
      const r = await c.query<{ drifted: string[]; alive: number }>(
        `SELECT
           coalesce((SELECT array_agg(agent_id ORDER BY agent_id) FROM revision_drift
                     WHERE revision = $1 AND agent_id <> $2 AND now() - at < make_interval(secs => $3)), '{}') AS drifted,
           (SELECT count(*)::int FROM agents WHERE now() - last_seen < make_interval(secs => $4) OR id = $2) AS alive`,
        [sha, self, windowMs / 1000, aliveMs / 1000],
      );
      const { drifted, alive } = r.rows[0]!;
      const n = drifted.length + 1;
      if (n * 100 > maxDriftedPercent * Math.max(1, alive))
        return {
          act: false,
          wave: null,
          halt: {
            kind: 'fleet_mass_drift' as const,
            reason: `${n} of ${alive} agents (over ${maxDriftedPercent} %) would have acted on drift of ${sha.slice(0, 12)}; approve it (POST /v1/unfreeze with approveRevision) if the change is meant for the fleet`,
            agents: [...drifted, self],
            checks: [],
          },
        };
      await c.query(
        `INSERT INTO revision_drift (revision, agent_id) VALUES ($1, $2)
         ON CONFLICT (revision, agent_id) DO UPDATE SET at = now()`,
        [sha, self],
      );
      return open;
    });
  };
}

/** Both checks in order: the fleet-wide mass drift first (it freezes), then the rollout waves. */
export function combineGates(gates: readonly RolloutGateFn[]): RolloutGateFn | undefined {
  if (gates.length === 0) return undefined;
  return async (sha, ctx) => {
    for (const g of gates) {
      const a = await g(sha, ctx);
      if (!a.act || a.halt) return a;
    }
    return { act: true, wave: null, halt: null };
  };
}
