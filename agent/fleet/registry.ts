/**
 * The fleet's agents (SPEC §11): each registers at start and writes a
 * heartbeat row after every cycle — its labels, the revision it acts on, when
 * its last cycle ran, how much drift it sees, whether it is frozen, its health
 * report. `GET /v1/fleet` reads them back. The rows are informational: no
 * guardrail trusts them (a heartbeat can be late); the shared freeze lives in
 * the state store.
 */
import type pg from 'pg';
import type { HealthReport } from '../health/types.js';
import { type Migration, migrate } from '../state/pg-store.js';
import { assessRollout, type RolloutConfig } from './rollout-gate.js';
import type { FleetAgentView, FleetView } from './types.js';
import { nodeCrypto } from '../../core/builtins.js';

export const AGENT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE agents (
        id text PRIMARY KEY,
        labels jsonb NOT NULL DEFAULT '{}',
        revision text,
        last_cycle_at timestamptz,
        drifted integer NOT NULL DEFAULT 0,
        frozen boolean NOT NULL DEFAULT false,
        health jsonb,
        registered_at timestamptz NOT NULL DEFAULT now(),
        last_seen timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 2,
    sql: `
      ALTER TABLE agents
        ADD COLUMN converged boolean NOT NULL DEFAULT false,
        ADD COLUMN stuck integer NOT NULL DEFAULT 0,
        -- since when converged and healthy on this revision (the database's clock), null while not
        ADD COLUMN good_since timestamptz;
      CREATE TABLE rollouts (
        revision text PRIMARY KEY,
        started_at timestamptz NOT NULL DEFAULT now(),
        completed_at timestamptz,
        -- the last halt: {"at", "agents", "checks"}; an unfreeze after it resumes the rollout
        halted jsonb
      );
    `,
  },
  {
    version: 3,
    sql: `
      -- fleet.massDrift: which agents acted on drift of a revision, and when last
      CREATE TABLE revision_drift (
        revision text NOT NULL,
        agent_id text NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (revision, agent_id)
      );
    `,
  },
  {
    version: 4,
    sql: `
      -- false while the agent's health results were all or partly taken before its last change: they
      -- describe the service as it was, so the rollout gate neither halts nor opens a wave on them
      ALTER TABLE agents ADD COLUMN health_current boolean NOT NULL DEFAULT true;
    `,
  },
  {
    version: 5,
    sql: `
      -- when the gate first found each wave open: {"0": "2026-…", "1": …} (GET /v1/fleet openedAt)
      ALTER TABLE rollouts ADD COLUMN opened jsonb NOT NULL DEFAULT '{}',
        -- the waves as planned when the rollout started (agent ids); null until pinned
        ADD COLUMN plan jsonb;
    `,
  },
  {
    version: 6,
    sql: `
      -- which source the agent reads (a digest of source.url and source.ref): a rollout's waves and the
      -- fleet mass drift count the agents of the revision's source only; null: an agent from before this
      ALTER TABLE agents ADD COLUMN source text;
    `,
  },
  {
    version: 7,
    sql: `
      -- a rollout and a mass-drift count are a revision's on one source: two refs reaching one commit
      -- (staging, then prod) are two rollouts ('' : the source was not known, before version 6)
      ALTER TABLE rollouts ADD COLUMN source text NOT NULL DEFAULT '';
      ALTER TABLE rollouts DROP CONSTRAINT rollouts_pkey, ADD PRIMARY KEY (source, revision);
      ALTER TABLE revision_drift ADD COLUMN source text NOT NULL DEFAULT '';
      ALTER TABLE revision_drift DROP CONSTRAINT revision_drift_pkey, ADD PRIMARY KEY (source, revision, agent_id);
    `,
  },
];

/**
 * The source an agent reads, as the fleet compares it: a digest of `source.url` and `source.ref` (a URL
 * may carry a token; the digest never shows it). Agents of other sources share the database but not the
 * revision: they are neither in its waves nor in its mass drift.
 */
export function sourceKey(source: { url: string; ref: string }): string {
  return nodeCrypto().createHash('sha256').update(`${source.url}\n${source.ref}`).digest('hex').slice(0, 16);
}

/** What an agent reports after each cycle. */
export interface Heartbeat {
  revision: string | null;
  lastCycleAt: number | null;
  drifted: number;
  /** No drift left that it would revert (report-only drift does not count). */
  converged: boolean;
  /** Resources with an open resource_stuck alert. */
  stuck: number;
  frozen: boolean;
  health: HealthReport;
  /** Every result in `health` was taken by a run that started after this agent's last change. */
  healthCurrent: boolean;
}

/** Where the admin API reads the fleet from. */
export interface FleetSource {
  view(): Promise<FleetView>;
}

/** Shortest liveness limit: a heartbeat older than max(3 reconcile intervals, this) marks an agent not alive. */
const MIN_ALIVE_MS = 30_000;

export const aliveLimitMs = (config: { reconcile: { intervalMs: number } }): number =>
  Math.max(3 * config.reconcile.intervalMs, MIN_ALIVE_MS);

/** No checks configured: healthy (SPEC §11; the checks themselves live in agent/health/). */
export const NO_CHECKS: HealthReport = Object.freeze({ ok: true, at: null, checks: [] });

interface AgentRow {
  id: string;
  labels: Record<string, string>;
  revision: string | null;
  last_cycle_at: Date | null;
  drifted: number;
  frozen: boolean;
  health: HealthReport | null;
  last_seen: Date;
  alive: boolean;
}

export class PgFleetRegistry implements FleetSource {
  constructor(
    private readonly pool: pg.Pool,
    private readonly self: { id: string; labels: Readonly<Record<string, string>>; source?: string | null },
    /** A heartbeat older than this marks the agent not alive (a few reconcile intervals). */
    private readonly aliveMs: number,
    /** fleet.rollout: the view shows the latest rollout's waves. */
    private readonly rollout: RolloutConfig | null = null,
  ) {}

  /** Creates the table if needed and (re-)registers this agent with its labels. */
  async register(): Promise<void> {
    await migrate(this.pool, 'agents', AGENT_MIGRATIONS);
    await this.pool.query(
      `INSERT INTO agents (id, labels, source) VALUES ($1, $2, $3)
       ON CONFLICT (id) DO UPDATE SET labels = EXCLUDED.labels, source = EXCLUDED.source, last_seen = now()`,
      [this.self.id, JSON.stringify(this.self.labels), this.self.source ?? null],
    );
  }

  /** One row per agent, on the database's clock (agents' clocks may disagree). */
  async heartbeat(h: Heartbeat): Promise<void> {
    await this.pool.query(
      `INSERT INTO agents (id, labels, revision, last_cycle_at, drifted, frozen, health, converged, stuck,
                           health_current, good_since, last_seen)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $11, CASE WHEN $8 AND $10 THEN now() END, now())
       ON CONFLICT (id) DO UPDATE SET labels = EXCLUDED.labels, revision = EXCLUDED.revision,
         last_cycle_at = EXCLUDED.last_cycle_at, drifted = EXCLUDED.drifted, frozen = EXCLUDED.frozen,
         health = EXCLUDED.health, converged = EXCLUDED.converged, stuck = EXCLUDED.stuck,
         health_current = EXCLUDED.health_current,
         good_since = CASE WHEN NOT (EXCLUDED.converged AND $10) THEN NULL
                           WHEN agents.revision IS NOT DISTINCT FROM EXCLUDED.revision
                             THEN coalesce(agents.good_since, now())
                           ELSE now() END,
         last_seen = now()`,
      [
        this.self.id,
        JSON.stringify(this.self.labels),
        h.revision,
        h.lastCycleAt === null ? null : new Date(h.lastCycleAt),
        h.drifted,
        h.frozen,
        JSON.stringify(h.health),
        h.converged,
        h.stuck,
        // good since now: converged, and healthy by results taken after the last change
        h.health.ok && h.healthCurrent,
        h.healthCurrent,
      ],
    );
  }

  async view(): Promise<FleetView> {
    const rows = await this.pool.query<AgentRow>(
      `SELECT id, labels, revision, last_cycle_at, drifted, frozen, health, last_seen,
              now() - last_seen < make_interval(secs => $1) AS alive
       FROM agents ORDER BY id`,
      [this.aliveMs / 1000],
    );
    const rollout = await this.rolloutView();
    const waveOf = (id: string) => {
      const k = rollout?.waves.findIndex((w) => w.agents.includes(id)) ?? -1;
      return k < 0 ? null : k;
    };
    return {
      backend: 'postgres',
      self: this.self.id,
      agents: rows.rows.map((r) => ({ ...toView(r), wave: waveOf(r.id) })),
      rollout,
    };
  }

  /** The rollout in progress (else the last one), as the gate sees it now. */
  private async rolloutView(): Promise<FleetView['rollout']> {
    if (!this.rollout) return null;
    const latest = await this.pool.query<{ revision: string }>(
      `SELECT revision FROM rollouts WHERE source = $1
       ORDER BY completed_at IS NULL DESC, started_at DESC LIMIT 1`,
      [this.self.source ?? ''],
    );
    const sha = latest.rows[0]?.revision;
    if (!sha) return null;
    const a = await assessRollout(this.pool, sha, this.rollout, this.aliveMs, undefined, this.self.source);
    if (!a) return null;
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return {
      revision: sha,
      waves: a.decision.waves.map((w) => ({
        index: w.index,
        agents: w.agents,
        state: a.completed ? 'done' : w.state,
        openedAt: iso(Date.parse(a.opened[String(w.index)] ?? '') || null),
        bakeUntil: iso(w.bakeUntil),
      })),
      halted: a.halted
        ? {
            at: a.halted.at,
            reason: a.halted.reason ?? 'rollout_halted',
            agents: a.halted.agents,
            checks: a.halted.checks,
          }
        : null,
    };
  }
}

function toView(r: AgentRow): FleetAgentView {
  const health = r.health ?? NO_CHECKS;
  return {
    id: r.id,
    labels: r.labels,
    revision: r.revision,
    wave: null,
    healthy: health.ok,
    health: health.checks,
    lastCycleAt: r.last_cycle_at?.toISOString() ?? null,
    lastSeenAt: r.last_seen.toISOString(),
    alive: r.alive,
    frozen: r.frozen,
    drifted: r.drifted,
  };
}
