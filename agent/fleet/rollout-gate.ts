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
 * - A halt (an open wave's agent fails a check or does not converge) freezes
 *   the fleet in the same transaction that records it (`rollout_halted`):
 *   no agent can read the halt recorded and the fleet not yet frozen. Once
 *   the fleet is unfrozen (`approveRevision`) the rollout resumes: the agents
 *   it halted on do not halt it again, others still do. While the fleet is
 *   frozen the halt holds as it was (an acknowledgement counts only after an
 *   unfreeze: before, a second agent read "halted on A, accepted" and opened
 *   the next wave in the instant between the halt and its freeze).
 * - Health counts only when it is current: an agent's check results taken
 *   before its last change describe the service as it was. Such results
 *   neither open the next wave nor halt this one (`health_current`).
 */
import type pg from 'pg';
import type { Freeze } from '../../policies/types.js';
import { inTransaction, type PgStateStore } from '../state/pg-store.js';
import {
  type AgentProgress,
  mayAct,
  currentWaves,
  type RolloutDecision,
  rolloutGate,
  type WaveSize,
} from '../../policies/rollout.js';

export interface GateAnswer {
  /** This agent may act on the revision now. */
  act: boolean;
  /** This agent's wave (0-based), null when it is not in the plan (not alive). */
  wave: number | null;
  /**
   * The fleet is frozen: why (`kind`, default rollout_halted), the agents and checks concerned, and the
   * freeze now in force — already written, in the transaction that recorded the halt (`froze`: by this
   * halt; false when the fleet was frozen already, by a freeze without an end).
   */
  halt: (Halt & { freeze: Freeze; froze: boolean }) | null;
}

export interface Halt {
  kind?: 'rollout_halted' | 'fleet_mass_drift';
  reason: string;
  agents: string[];
  checks: string[];
}

/** `freeze.by` of a freeze set by a fleet gate (a halted rollout, the fleet-wide mass drift). */
export const ROLLOUT_ACTOR = 'steward (rollout halted)';

/** The freeze reason of a halt: `rollout_halted: …; agents a, b; failing checks c`. */
export function haltReason(h: Halt): string {
  const checks = h.checks.length > 0 ? `; failing checks ${h.checks.join(', ')}` : '';
  return `${h.kind ?? 'rollout_halted'}: ${h.reason}; agents ${h.agents.join(', ')}${checks}`;
}

/**
 * What the reconciler asks before acting on `sha` (`approved`: an approval of `sha` is open, which
 * exempts it from the fleet-wide mass-drift halt as from the agent's own; `now`: the cycle's clock, the
 * `since` of a freeze a halt writes).
 */
export type RolloutGateFn = (sha: string, ctx: { approved: boolean; now: number }) => Promise<GateAnswer>;

/** Freezes the fleet for `halt` in one transaction with `record` (the halt's own bookkeeping; `froze`: this halt's freeze was written). */
async function freezeFor(
  store: PgStateStore,
  halt: Halt,
  now: number,
  record: (c: pg.PoolClient, froze: boolean) => Promise<void>,
): Promise<GateAnswer> {
  const wanted: Freeze = { reason: haltReason(halt), by: ROLLOUT_ACTOR, since: now, until: null };
  const { freeze, wrote } = await store.freezeWith(wanted, record);
  return { act: false, wave: null, halt: { ...halt, freeze, froze: wrote } };
}

interface Row {
  id: string;
  revision: string | null;
  converged: boolean;
  stuck: number;
  /** The heartbeat's `health.ok` (null: no report). */
  health_ok: boolean | null;
  /** The names of its failing checks (only what the gate needs of the report: 1,000 agents ask it). */
  failing: string[];
  health_current: boolean;
  good_since_ms: number | null;
  reporting: boolean;
}

/** A rollout as the fleet stands now: its waves, the gate's decision, its halt so far. */
export interface RolloutAssessment {
  revision: string;
  completed: boolean;
  waves: string[][];
  decision: RolloutDecision;
  /**
   * The agents a halt was taken for already. Once the fleet is unfrozen they do not halt it again and
   * count as done; while it is frozen they count as they are.
   */
  acknowledged: string[];
  halted: { at: string; agents: string[]; checks: string[]; reason?: string } | null;
  /** When the gate first found each wave open (ISO, by wave index as a string). */
  opened: Record<string, string>;
  /** `waves` is the plan pinned in the database (else planned now, to be pinned by the gate). */
  pinned: boolean;
}

/** The agents of source $3 (null: every agent; an agent registered before sources were recorded counts for any). */
const sameSource = (n: number) => `($${n}::text IS NULL OR source IS NULL OR source = $${n}::text)`;
const SAME_SOURCE = sameSource(3);
const SAME_SOURCE_5 = sameSource(5);

export interface RolloutConfig {
  waves: readonly WaveSize[];
  bakeMs: number;
}

/**
 * Reads the rollout of `sha` (null when none started) and the agents' heartbeats, and decides. An agent
 * "reports" while its heartbeat is within `aliveMs` of the fleet's newest one (not of the clock: after
 * the database was down, every heartbeat is old and nobody looks dead); `self` always reports.
 */
export async function assessRollout(
  pool: pg.Pool,
  sha: string,
  rollout: RolloutConfig,
  aliveMs: number,
  self?: string,
  /** The revision's source (registry.ts sourceKey): agents of other sources are not counted. */
  source?: string | null,
): Promise<RolloutAssessment | null> {
  const r = await pool.query<{
    completed: boolean;
    halted: RolloutAssessment['halted'];
    opened: Record<string, string>;
    plan: string[][] | null;
    frozen: boolean;
    now_ms: number;
  }>(
    // One snapshot of the halt and the freeze (written in one transaction): never a halt without its freeze.
    `SELECT completed_at IS NOT NULL AS completed, halted, opened, plan,
            (SELECT freeze_json IS NOT NULL FROM fleet_control WHERE id = 1) IS NOT FALSE AS frozen,
            (extract(epoch FROM now()) * 1000)::float8 AS now_ms
     FROM rollouts WHERE source = $2 AND revision = $1`,
    [sha, source ?? ''],
  );
  const ro = r.rows[0];
  if (!ro) return null;
  const rows = (
    await pool.query<Row>(
      `SELECT id, revision, converged, stuck, health_current, (health->>'ok')::boolean AS health_ok,
              CASE WHEN (health->>'ok')::boolean IS FALSE THEN
                coalesce((SELECT array_agg(c->>'name') FROM jsonb_array_elements(health->'checks') c
                          WHERE (c->>'ok')::boolean IS FALSE), '{}')
              ELSE '{}' END AS failing,
              (extract(epoch FROM good_since) * 1000)::float8 AS good_since_ms,
              (SELECT max(last_seen) FROM agents WHERE ${SAME_SOURCE}) - last_seen < make_interval(secs => $1)
                OR id = $2 AS reporting
       FROM agents WHERE ${SAME_SOURCE}`,
      [aliveMs / 1000, self ?? null, source ?? null],
    )
  ).rows;
  const waves = currentWaves(
    ro.plan,
    rows.filter((x) => x.reporting).map((x) => x.id),
    rollout.waves,
  );
  const acknowledged = ro.halted?.agents ?? [];
  const ack = new Set(ro.frozen ? [] : acknowledged);
  const haltedAt = ro.halted ? Date.parse(ro.halted.at) : 0;
  const progress = new Map<string, AgentProgress>(
    rows.map((x) => {
      const p: AgentProgress = {
        revision: x.revision,
        converged: x.converged,
        stuck: x.stuck > 0,
        // Results taken before the agent's last change say nothing of the revision: no halt on them
        // (and good_since stays null: they open nothing either).
        healthy: !x.health_current || (x.health_ok ?? true),
        failingChecks: x.health_current ? x.failing : [],
        goodSince: x.good_since_ms,
        reporting: x.reporting,
      };
      return [x.id, ack.has(x.id) ? accepted(p, sha, haltedAt) : p];
    }),
  );
  const decision = rolloutGate({ revision: sha, waves, progress, bakeMs: rollout.bakeMs, now: ro.now_ms });
  return {
    revision: sha,
    completed: ro.completed,
    waves,
    decision,
    acknowledged,
    halted: ro.halted,
    opened: ro.opened,
    pinned: ro.plan !== null,
  };
}

/**
 * An agent a halt was taken for, once an operator unfroze the fleet: its failing checks and stuck
 * resources no longer halt, and if it went silent it no longer holds anything. One that reports must
 * still be converged on the revision; its bake counts from the halt.
 */
function accepted(p: AgentProgress, sha: string, haltedAt: number): AgentProgress {
  if (!p.reporting)
    return { ...p, reporting: true, revision: sha, healthy: true, stuck: false, goodSince: haltedAt };
  const goodSince = p.goodSince ?? (p.revision === sha && p.converged ? haltedAt : null);
  return { ...p, healthy: true, stuck: false, goodSince };
}

export function pgRolloutGate(
  store: PgStateStore,
  self: string,
  rollout: RolloutConfig,
  aliveMs: number,
  source: string | null = null,
): RolloutGateFn {
  const { pool } = store;
  return async (sha, ctx) => {
    // A rollout is the revision's on one source: two sources (refs) reaching one commit roll out apart.
    const src = source ?? '';
    await pool.query('INSERT INTO rollouts (source, revision) VALUES ($2, $1) ON CONFLICT DO NOTHING', [
      sha,
      src,
    ]);
    let a = await assessRollout(pool, sha, rollout, aliveMs, self, source);
    if (a && !a.completed && !a.pinned) {
      // The first to ask pins the plan: joins and deaths do not re-plan. One that lost the race decides
      // on the plan that won, not on its own.
      const won = await pool.query(
        'UPDATE rollouts SET plan = $2 WHERE source = $3 AND revision = $1 AND plan IS NULL',
        [sha, JSON.stringify(a.waves), src],
      );
      if (won.rowCount === 0) a = await assessRollout(pool, sha, rollout, aliveMs, self, source);
    }
    if (!a || a.completed) return { act: true, wave: null, halt: null };
    const { waves, decision: d } = a;
    const wave = waves.findIndex((w) => w.includes(self));
    if (d.halt) {
      const halt = d.halt;
      const agents = [...new Set([...a.acknowledged, ...halt.agents])];
      const answer = await freezeFor(store, halt, ctx.now, async (c, froze) => {
        // Recorded only with this halt's own freeze: an unfreeze acknowledges what it froze for, never a
        // halt found under somebody else's freeze (lifting that must not wave this one through).
        if (!froze) return;
        await c.query(
          `UPDATE rollouts SET halted = jsonb_build_object('at', now(), 'agents', $2::jsonb, 'checks', $3::jsonb,
                                                         'reason', $4::text)
           WHERE source = $5 AND revision = $1`,
          [sha, JSON.stringify(agents), JSON.stringify(halt.checks), haltReason(halt), src],
        );
      });
      return { ...answer, wave: wave < 0 ? null : wave };
    }
    if (d.open > 0 && !(String(d.open - 1) in a.opened))
      // Waves 0 … open-1 are open: stamp those not stamped yet (the earlier stamps are kept).
      await pool.query(
        `UPDATE rollouts SET opened = (SELECT jsonb_object_agg(k::text, now()) FROM generate_series(0, $2::int - 1) k) || opened
         WHERE source = $3 AND revision = $1`,
        [sha, d.open, src],
      );
    if (d.waves.every((w) => w.state === 'done'))
      await pool.query('UPDATE rollouts SET completed_at = now() WHERE source = $2 AND revision = $1', [
        sha,
        src,
      ]);
    return { act: mayAct(self, waves, d), wave: wave < 0 ? null : wave, halt: null };
  };
}

/**
 * fleet.massDrift: the share of the fleet's reporting agents of the revision's source (heartbeat within
 * `aliveMs` of the newest one) that acted on drift of one revision within `windowMs`. The agent about to act counts itself; if that takes the share past `maxDriftedPercent`
 * the fleet freezes (`fleet_mass_drift`) before it acts, so a bad push stops after that share of the
 * fleet took it even when each agent alone saw too little drift to halt. Serialised per revision (a
 * transaction-level advisory lock) so agents acting at once cannot all slip under the limit.
 */
export function pgFleetMassDrift(
  store: PgStateStore,
  self: string,
  maxDriftedPercent: number,
  aliveMs: number,
  windowMs: number,
  source: string | null = null,
): RolloutGateFn {
  const { pool } = store;
  return async (sha, ctx) => {
    const open: GateAnswer = { act: true, wave: null, halt: null };
    if (ctx.approved) return open;
    const halt = await inTransaction(pool, async (c): Promise<Halt | null> => {
      const src = source ?? '';
      await c.query("SELECT pg_advisory_xact_lock(hashtext('steward-drift:' || $2 || ':' || $1))", [
        sha,
        src,
      ]);
      const r = await c.query<{ drifted: string[]; alive: number }>(
        `SELECT
           coalesce((SELECT array_agg(agent_id ORDER BY agent_id) FROM revision_drift
                     WHERE source = $6 AND revision = $1 AND agent_id <> $2
                       AND now() - at < make_interval(secs => $3)), '{}') AS drifted,
           (SELECT count(*)::int FROM agents
             WHERE ${SAME_SOURCE_5}
               AND ((SELECT max(last_seen) FROM agents WHERE ${SAME_SOURCE_5}) - last_seen < make_interval(secs => $4)
                    OR id = $2)) AS alive`,
        [sha, self, windowMs / 1000, aliveMs / 1000, source, src],
      );
      const { drifted, alive } = r.rows[0]!;
      const n = drifted.length + 1;
      if (n * 100 > maxDriftedPercent * Math.max(1, alive))
        return {
          kind: 'fleet_mass_drift' as const,
          reason: `${n} of ${alive} agents (over ${maxDriftedPercent} %) would have acted on drift of ${sha.slice(0, 12)}; approve it (POST /v1/unfreeze with approveRevision) if the change is meant for the fleet`,
          agents: [...drifted, self],
          checks: [],
        };
      await c.query(
        `INSERT INTO revision_drift (source, revision, agent_id) VALUES ($3, $1, $2)
         ON CONFLICT (source, revision, agent_id) DO UPDATE SET at = now()`,
        [sha, self, src],
      );
      return null;
    });
    // Over the limit: the count is not taken (this agent does not act), the fleet freezes.
    return halt ? freezeFor(store, halt, ctx.now, async () => undefined) : open;
  };
}

/** The checks in order; the first that holds or halts answers (build.ts: the waves, then the fleet-wide mass drift). */
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
