/**
 * The shared state store on PostgreSQL (`state.backend: postgres`, SPEC §11):
 * one database for the whole fleet.
 *
 * Shared by every agent: freeze, mode, the rate-limit bucket, the revision
 * soak (one row, `fleet_control`), approvals (one row per revision; its
 * binding to drift and its spending are per agent, since each host drifts on
 * its own) and the audit (one table, every agent's actions). Per agent:
 * resource records, keyed `(scope, key)` where `scope` is the agent id for
 * host-local kinds (File) — a shared kind (EC2) can later use one fleet-wide
 * scope with the same table — and the last accepted revision.
 *
 * Safety (SPEC §9, "no lost freeze"):
 * - `save` writes only what this agent changed since it last read or wrote
 *   the backend (its baseline), so a cycle that started before another agent
 *   froze the fleet cannot write the old "not frozen" back. Lifting a freeze
 *   or leaving observe is conditional on the row still holding what this
 *   agent saw (else STATE_CONFLICT); setting one is not.
 * - `writeAhead` takes the tokens and writes the attempt records and the
 *   `started` intents in ONE transaction that re-reads freeze and mode
 *   `FOR UPDATE`: a freeze committed by anyone before it acts on nothing.
 * - Every query error throws; the reconciler then acts on nothing and keeps
 *   detecting. Statements, connections and idle transactions are time-limited,
 *   the pool is bounded by `poolSize`.
 */
import pg from 'pg';
import { errorMessage, StewardError } from '../../core/errors.js';
import { refill, take } from '../../policies/rate-limit.js';
import type { Freeze, Mode, ResourceRecord, TokenBucket } from '../../policies/types.js';
import {
  type Approval,
  type AuditRead,
  type AuditRecord,
  freshState,
  type PersistedState,
  type StateStore,
  type WriteAheadRequest,
  type WriteAheadResult,
} from './types.js';

export interface PgStoreOptions {
  /** The pool to use (see {@link createPgPool}); the store ends it on `close()` when it owns it. */
  pool: pg.Pool;
  agentId: string;
  ownsPool?: boolean;
}

export interface PgConnection {
  url: string;
  password: string | null;
  poolSize: number;
  connectTimeoutMs: number;
}

/** Longest a single statement may run: a wedged database holds a cycle this long, never forever. */
export const STATEMENT_TIMEOUT_MS = 10_000;

/** A bounded pool with time limits; its idle-client errors (a server that went away) are reported, never thrown. */
export function createPgPool(
  c: PgConnection,
  agentId: string,
  onError: (message: string) => void = () => undefined,
): pg.Pool {
  const pool = new pg.Pool({
    connectionString: c.url,
    ...(c.password !== null ? { password: c.password } : {}),
    max: c.poolSize,
    connectionTimeoutMillis: c.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    query_timeout: STATEMENT_TIMEOUT_MS + 2_000,
    idle_in_transaction_session_timeout: STATEMENT_TIMEOUT_MS * 3,
    lock_timeout: STATEMENT_TIMEOUT_MS,
    application_name: `steward/${agentId}`.slice(0, 63),
  });
  pool.on('error', (e) => onError(e.message));
  return pool;
}

// ---------------------------------------------------------------------------
// Migrations
// ---------------------------------------------------------------------------

/** A versioned schema step: SQL run once, in order, inside the migration transaction. */
export interface Migration {
  version: number;
  sql: string;
}

/** The key of the transaction-level advisory lock every migration takes (any constant: it is ours). */
const MIGRATION_LOCK = 0x5374_6577; // "Stew"

/**
 * Brings `component`'s tables up to the last of `steps`, in one transaction
 * under `pg_advisory_xact_lock`: agents that start at once wait for each other
 * and the later ones find nothing left to do. `schema_version` keeps one row
 * per component, so other parts (e.g. shard leases) can migrate their own
 * tables with this same function. Returns the versions it applied.
 */
export async function migrate(
  pool: pg.Pool,
  component: string,
  steps: readonly Migration[],
): Promise<number[]> {
  return inTransaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await c.query(
      `CREATE TABLE IF NOT EXISTS schema_version (
         component text PRIMARY KEY,
         version integer NOT NULL,
         migrated_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const row = await c.query<{ version: number }>(
      'SELECT version FROM schema_version WHERE component = $1',
      [component],
    );
    const current = row.rows[0]?.version ?? 0;
    const newest = Math.max(0, ...steps.map((s) => s.version));
    if (current > newest)
      throw new StewardError(
        'STATE_SCHEMA_NEWER',
        `the database's ${component} schema is version ${current}, newer than this steward knows (${newest}); upgrade this agent to the fleet's version`,
        { component, current, newest },
      );
    const applied: number[] = [];
    for (const step of [...steps].sort((a, b) => a.version - b.version)) {
      if (step.version <= current) continue;
      await c.query(step.sql);
      applied.push(step.version);
    }
    if (applied.length > 0)
      await c.query(
        `INSERT INTO schema_version (component, version) VALUES ($1, $2)
         ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, migrated_at = now()`,
        [component, newest],
      );
    return applied;
  });
}

/** Runs `fn` in one transaction on a pooled client: committed if it returns, rolled back if it throws. */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}

export const STATE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE fleet_control (
        id integer PRIMARY KEY CHECK (id = 1),
        freeze_json jsonb,
        mode text CHECK (mode IN ('observe', 'enforce')),
        bucket jsonb,
        soak jsonb,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      INSERT INTO fleet_control (id) VALUES (1);
      CREATE TABLE approvals (
        sha text PRIMARY KEY,
        by text NOT NULL,
        at double precision NOT NULL,
        -- agent id → {"keys": [...] | null, "spent": bool}: each agent binds and spends it on its own drift
        bindings jsonb NOT NULL DEFAULT '{}'
      );
      CREATE TABLE resources (
        scope text NOT NULL,
        key text NOT NULL,
        record jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (scope, key)
      );
      CREATE TABLE agent_state (
        agent_id text PRIMARY KEY,
        accepted jsonb
      );
      CREATE TABLE audit (
        seq bigserial PRIMARY KEY,
        agent_id text NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        record jsonb NOT NULL
      );
    `,
  },
];

// ---------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------

/** Open approvals kept per fleet (the same bound as the files backend's). */
const MAX_APPROVALS = 20;

interface ApprovalRow {
  sha: string;
  by: string;
  at: number;
  bindings: Record<string, { keys: string[] | null; spent: boolean }>;
}

interface ControlRow {
  freeze: Freeze | null;
  mode: Mode | null;
  bucket: TokenBucket | null;
  soak: PersistedState['soak'];
}

/** What this agent last read from or wrote to the backend: `save` writes only what differs from it. */
interface Baseline {
  freeze: string;
  mode: Mode | null;
  soak: string;
  approvals: Map<string, Approval>;
  accepted: string;
  resources: Map<string, string>;
}

const json = (v: unknown): string => JSON.stringify(v ?? null);

type Client = pg.PoolClient;

export class PgStateStore implements StateStore {
  readonly pool: pg.Pool;
  readonly agentId: string;
  private readonly ownsPool: boolean;
  private baseline: Baseline | null = null;
  private migrated = false;

  constructor(opts: PgStoreOptions) {
    this.pool = opts.pool;
    this.agentId = opts.agentId;
    this.ownsPool = opts.ownsPool ?? true;
  }

  /**
   * Migrates (once per process), then reads the shared fields and this agent's own records.
   * An unreachable database fails the start (STATE_BACKEND_UNREACHABLE): without it the agent
   * cannot know whether the fleet is frozen.
   */
  async load(): Promise<PersistedState> {
    try {
      return await this.loadNow();
    } catch (e) {
      if (e instanceof StewardError) throw e;
      throw new StewardError(
        'STATE_BACKEND_UNREACHABLE',
        `cannot read the fleet state from PostgreSQL (state.postgres.url): ${errorMessage(e)}. ` +
          'steward does not start without it, since it cannot know whether the fleet is frozen; check that the database is up and reachable, and the user and passwordFile.',
        {},
        { cause: e },
      );
    }
  }

  private async loadNow(): Promise<PersistedState> {
    if (!this.migrated) {
      await migrate(this.pool, 'state', STATE_MIGRATIONS);
      this.migrated = true;
    }
    return this.tx(async (c) => {
      const shared = await this.readShared(c);
      const res = await c.query<{ key: string; record: ResourceRecord }>(
        'SELECT key, record FROM resources WHERE scope = $1',
        [this.agentId],
      );
      const acc = await c.query<{ accepted: PersistedState['revision'] }>(
        'SELECT accepted FROM agent_state WHERE agent_id = $1',
        [this.agentId],
      );
      const resources = Object.fromEntries(res.rows.map((r) => [r.key, r.record]));
      const state: PersistedState = {
        ...freshState(),
        ...shared,
        revision: acc.rows[0]?.accepted ?? null,
        resources,
      };
      this.baseline = {
        ...this.sharedBaseline(state),
        accepted: json(state.revision),
        resources: new Map(res.rows.map((r) => [r.key, json(r.record)])),
      };
      return state;
    });
  }

  async actingHalted(): Promise<boolean> {
    const r = await this.pool.query<{ halted: boolean }>(
      "SELECT (freeze_json IS NOT NULL OR coalesce(mode, '') = 'observe') AS halted FROM fleet_control WHERE id = 1",
    );
    return r.rows[0]?.halted !== false;
  }

  async endFreeze(seen: Freeze): Promise<boolean> {
    const base = this.ready();
    const r = await this.pool.query(
      `UPDATE fleet_control SET freeze_json = NULL, updated_at = now()
       WHERE id = 1 AND freeze_json = $1::jsonb AND jsonb_typeof(freeze_json->'until') = 'number'
         AND (freeze_json->>'until')::float8 <= extract(epoch FROM clock_timestamp()) * 1000`,
      [json(seen)],
    );
    if (r.rowCount === 0) return false;
    base.freeze = json(null);
    return true;
  }

  async peekShared(local: PersistedState): Promise<Pick<PersistedState, 'freeze' | 'mode'>> {
    const base = this.ready();
    const { freeze, mode } = await this.readControl(this.pool, false);
    // Unwritten here (memory differs from what this agent last read or wrote) and more cautious: shown.
    const heldFreeze = local.freeze !== null && json(local.freeze) !== base.freeze;
    const heldObserve = local.mode === 'observe' && base.mode !== 'observe';
    return { freeze: heldFreeze ? local.freeze : freeze, mode: heldObserve ? 'observe' : mode };
  }

  async refresh(state: PersistedState, revision?: string): Promise<PersistedState> {
    const base = this.ready();
    // What only memory holds goes first (a freeze taken while the database was down).
    if (changed(state, base)) await this.tx((c) => this.writeChanges(c, state, base));
    const shared = await this.readShared(this.pool, revision);
    Object.assign(base, this.sharedBaseline({ ...state, ...shared }));
    return { ...state, ...shared };
  }

  /** Writes what changed since this agent last read or wrote the backend (nothing: no query at all). */
  async save(state: PersistedState): Promise<void> {
    const base = this.ready();
    if (changed(state, base)) await this.tx((c) => this.writeChanges(c, state, base));
  }

  async writeAhead(req: WriteAheadRequest): Promise<WriteAheadResult> {
    const base = this.ready();
    return this.tx(async (c) => {
      const ctl = await this.readControl(c, true);
      base.freeze = json(ctl.freeze);
      base.mode = ctl.mode;
      if (ctl.freeze !== null) return this.blocked('frozen', ctl);
      if ((ctl.mode ?? req.initialMode) === 'observe') return this.blocked('observe', ctl);
      const { granted, bucket } = take(refill(ctl.bucket, req.now, req.rateLimit), req.keys.length);
      if (granted === 0) return { kind: 'written', granted: 0 };
      await c.query('UPDATE fleet_control SET bucket = $1, updated_at = now() WHERE id = 1', [json(bucket)]);
      const keys = req.keys.slice(0, granted);
      const records = keys.map((k) => req.resources[k]);
      await this.upsertResources(c, keys, records);
      await this.insertAudit(c, req.intents.slice(0, granted));
      this.commitLater(c, () => {
        keys.forEach((k, i) => {
          base.resources.set(k, json(records[i]));
        });
      });
      return { kind: 'written', granted };
    });
  }

  /**
   * Freezes the fleet with `freeze` in ONE transaction with `also` (a fleet gate recording its halt; run
   * after the freeze, told whether `freeze` is the one now in force), so
   * that no agent can see the halt recorded and the fleet not yet frozen. A freeze without an end is
   * not replaced (it is already frozen until someone unfreezes); a freeze with an end is (the halt has
   * none: the later end wins). Returns the freeze in force after it, which this agent's baseline now
   * holds (the cycle adopts that object and its save writes nothing more for it), and whether it is
   * `freeze` (else the fleet was frozen already).
   */
  async freezeWith(
    freeze: Freeze,
    also: (c: Client, wrote: boolean) => Promise<void>,
  ): Promise<{ freeze: Freeze; wrote: boolean }> {
    const base = this.ready();
    return this.tx(async (c) => {
      const r = await c.query<{ freeze: Freeze; wrote: boolean }>(
        `UPDATE fleet_control SET
           freeze_json = CASE WHEN freeze_json IS NULL OR jsonb_typeof(freeze_json->'until') = 'number'
                              THEN $1::jsonb ELSE freeze_json END,
           updated_at = now()
         WHERE id = 1 RETURNING freeze_json AS freeze, freeze_json = $1::jsonb AS wrote`,
        [json(freeze)],
      );
      const row = r.rows[0];
      if (!row) throw new StewardError('STATE_CORRUPT', 'the fleet_control row is missing from the database');
      await also(c, row.wrote);
      this.commitLater(c, () => {
        base.freeze = json(row.freeze);
      });
      return row;
    });
  }

  async appendAudit(records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    const c = await this.pool.connect();
    try {
      await this.insertAudit(c, records);
    } finally {
      c.release();
    }
  }

  /** Newest first, the whole fleet's; `limit <= 0` reads everything. */
  async readAudit(limit: number): Promise<AuditRead> {
    const rows = await this.pool.query<{ agent_id: string; record: AuditRecord }>(
      `SELECT agent_id, record FROM audit ORDER BY seq DESC${limit > 0 ? ' LIMIT $1' : ''}`,
      limit > 0 ? [limit] : [],
    );
    return { records: rows.rows.map((r) => ({ ...r.record, agent: r.agent_id })), skipped: [] };
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end();
  }

  // -------------------------------------------------------------------------

  private ready(): Baseline {
    if (!this.baseline) throw new Error('PgStateStore: load() first');
    return this.baseline;
  }

  private sharedBaseline(s: PersistedState): Pick<Baseline, 'freeze' | 'mode' | 'soak' | 'approvals'> {
    return {
      freeze: json(s.freeze),
      mode: s.mode,
      soak: json(s.soak),
      approvals: new Map(s.approvals.map((a) => [a.sha, a])),
    };
  }

  /** Runs `fn` in a transaction; callbacks queued with {@link commitLater} run once it committed. */
  private async tx<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    const after: Array<() => void> = [];
    afterCommit.set(c, after);
    let broken = false;
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      for (const f of after) f();
      return out;
    } catch (e) {
      broken = true;
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      afterCommit.delete(c);
      // A client whose transaction failed may hold a broken connection: drop it rather than pool it.
      c.release(broken);
    }
  }

  private commitLater(c: Client, f: () => void): void {
    afterCommit.get(c)?.push(f);
  }

  /** Nothing was written before this (only the locked read): the transaction just ends. */
  private blocked(reason: 'frozen' | 'observe', ctl: ControlRow): WriteAheadResult {
    return { kind: 'blocked', reason, freeze: ctl.freeze, mode: ctl.mode };
  }

  /** Freeze, mode, bucket and soak; `FOR UPDATE` in the write-ahead. */
  private async readControl(c: Pick<pg.Pool, 'query'>, lock: boolean): Promise<ControlRow> {
    const ctl = await c.query<ControlRow>(
      `SELECT freeze_json AS freeze, mode, bucket, soak FROM fleet_control WHERE id = 1${lock ? ' FOR UPDATE' : ''}`,
    );
    const row = ctl.rows[0];
    if (!row) throw new StewardError('STATE_CORRUPT', 'the fleet_control row is missing from the database');
    return row;
  }

  /**
   * The shared fields as this agent sees them, in one query: approvals it spent are gone for it, and with
   * `revision` (a cycle's), an approval of another revision that it never bound is not shown — it may be
   * one this agent has not polled yet, and the cycle would spend it as "Git moved on".
   */
  private async readShared(
    q: Pick<pg.Pool, 'query'>,
    revision?: string,
  ): Promise<Pick<PersistedState, 'freeze' | 'mode' | 'bucket' | 'soak' | 'approvals'>> {
    const r = await q.query<ControlRow & { approvals: ApprovalRow[] }>(
      `SELECT c.freeze_json AS freeze, c.mode, c.bucket, c.soak,
              (SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY a.at), '[]'::jsonb)
                 FROM (SELECT sha, by, at, bindings FROM approvals) a) AS approvals
       FROM fleet_control c WHERE c.id = 1`,
    );
    const row = r.rows[0];
    if (!row) throw new StewardError('STATE_CORRUPT', 'the fleet_control row is missing from the database');
    const approvals: Approval[] = [];
    for (const a of row.approvals) {
      const mine = a.bindings[this.agentId];
      if (mine?.spent) continue;
      if (revision !== undefined && a.sha !== revision && (mine?.keys ?? null) === null) continue;
      approvals.push({ sha: a.sha, by: a.by, at: a.at, keys: mine?.keys ?? null });
    }
    return { freeze: row.freeze, mode: row.mode, bucket: row.bucket, soak: row.soak, approvals };
  }

  /** Writes what `state` changed against the baseline; the baseline follows once the transaction committed. */
  private async writeChanges(c: Client, state: PersistedState, base: Baseline): Promise<void> {
    const done: Array<() => void> = [];
    if (json(state.freeze) !== base.freeze) {
      // A freeze replaces the one in the row only if the row holds none, holds what this agent saw, or
      // ends sooner (no end beats any end; the later end wins): a save never shortens or replaces a freeze
      // set meanwhile by another agent (a rollout halt, an operator). Not written: the stronger freeze stays,
      // and this agent adopts it at its next refresh.
      let wrote = true;
      if (state.freeze === null) await this.conditional(c, 'freeze', base.freeze, 'the freeze');
      else {
        const r = await c.query(
          `UPDATE fleet_control SET freeze_json = $1::jsonb, updated_at = now()
           WHERE id = 1 AND (freeze_json IS NULL OR freeze_json = $2::jsonb
             OR (jsonb_typeof(freeze_json->'until') = 'number'
                 AND (jsonb_typeof($1::jsonb->'until') IS DISTINCT FROM 'number'
                      OR ($1::jsonb->>'until')::float8 > (freeze_json->>'until')::float8)))`,
          [json(state.freeze), base.freeze],
        );
        wrote = (r.rowCount ?? 0) > 0;
      }
      const v = json(state.freeze);
      if (wrote)
        done.push(() => {
          base.freeze = v;
        });
    }
    if (state.mode !== base.mode) {
      if (state.mode === 'observe')
        await c.query(`UPDATE fleet_control SET mode = 'observe', updated_at = now() WHERE id = 1`);
      else await this.conditional(c, 'mode', base.mode, 'the mode', state.mode);
      const v = state.mode;
      done.push(() => {
        base.mode = v;
      });
    }
    if (json(state.soak) !== base.soak) {
      // Several agents count the same revision's soak: never backwards for one revision.
      await c.query(
        `UPDATE fleet_control SET updated_at = now(), soak = CASE
           WHEN $1::jsonb IS NOT NULL AND soak->>'sha' = $1::jsonb->>'sha'
             AND (soak->>'cyclesObserved')::int > ($1::jsonb->>'cyclesObserved')::int THEN soak
           ELSE $1::jsonb END
         WHERE id = 1`,
        [json(state.soak)],
      );
      const v = json(state.soak);
      done.push(() => {
        base.soak = v;
      });
    }
    if (await this.writeApprovals(c, state.approvals, base.approvals)) {
      const v = new Map(state.approvals.map((a) => [a.sha, a]));
      done.push(() => {
        base.approvals = v;
      });
    }
    if (json(state.revision) !== base.accepted) {
      await c.query(
        `INSERT INTO agent_state (agent_id, accepted) VALUES ($1, $2)
         ON CONFLICT (agent_id) DO UPDATE SET accepted = EXCLUDED.accepted`,
        [this.agentId, json(state.revision)],
      );
      const v = json(state.revision);
      done.push(() => {
        base.accepted = v;
      });
    }
    const changed: string[] = [];
    const now = new Map<string, string>();
    for (const [k, r] of Object.entries(state.resources)) {
      const v = json(r);
      now.set(k, v);
      if (base.resources.get(k) !== v) changed.push(k);
    }
    const removed = [...base.resources.keys()].filter((k) => !now.has(k));
    if (changed.length > 0)
      await this.upsertResources(
        c,
        changed,
        changed.map((k) => state.resources[k]),
      );
    if (removed.length > 0)
      await c.query('DELETE FROM resources WHERE scope = $1 AND key = ANY($2::text[])', [
        this.agentId,
        removed,
      ]);
    if (changed.length > 0 || removed.length > 0)
      done.push(() => {
        base.resources = now;
      });
    this.commitLater(c, () => {
      for (const f of done) f();
    });
  }

  /** Lifts a freeze / sets a less cautious mode only if the row still holds what this agent saw. */
  private async conditional(
    c: Client,
    column: 'freeze' | 'mode',
    seen: string | Mode | null,
    what: string,
    value: Mode | null = null,
  ): Promise<void> {
    const r =
      column === 'freeze'
        ? await c.query(
            'UPDATE fleet_control SET freeze_json = NULL, updated_at = now() WHERE id = 1 AND freeze_json IS NOT DISTINCT FROM $1::jsonb',
            [seen === 'null' ? null : seen],
          )
        : await c.query(
            'UPDATE fleet_control SET mode = $1, updated_at = now() WHERE id = 1 AND mode IS NOT DISTINCT FROM $2',
            [value, seen],
          );
    if (r.rowCount === 0)
      throw new StewardError(
        'STATE_CONFLICT',
        `${what} of the fleet was changed meanwhile by another agent; nothing was changed here. Read GET /v1/status and retry.`,
      );
  }

  /** New approvals inserted (a re-approval replaces the row for every agent), spent ones marked per agent. */
  private async writeApprovals(
    c: Client,
    next: readonly Approval[],
    before: ReadonlyMap<string, Approval>,
  ): Promise<boolean> {
    let wrote = false;
    const binding = (keys: string[] | null, spent: boolean) => JSON.stringify({ keys, spent });
    for (const a of next) {
      const old = before.get(a.sha);
      if (old && old.at === a.at && old.by === a.by) {
        if (json(old.keys) === json(a.keys)) continue;
        await c.query(
          `UPDATE approvals SET bindings = jsonb_set(bindings, ARRAY[$2::text], $3::jsonb) WHERE sha = $1`,
          [a.sha, this.agentId, binding(a.keys, false)],
        );
      } else {
        await c.query(
          `INSERT INTO approvals (sha, by, at, bindings) VALUES ($1, $2, $3, jsonb_build_object($4::text, $5::jsonb))
           ON CONFLICT (sha) DO UPDATE SET by = EXCLUDED.by, at = EXCLUDED.at, bindings = EXCLUDED.bindings`,
          [a.sha, a.by, a.at, this.agentId, binding(a.keys, false)],
        );
        await c.query(
          'DELETE FROM approvals WHERE sha NOT IN (SELECT sha FROM approvals ORDER BY at DESC LIMIT $1)',
          [MAX_APPROVALS],
        );
      }
      wrote = true;
    }
    const kept = new Set(next.map((a) => a.sha));
    for (const [sha, a] of before) {
      if (kept.has(sha)) continue;
      // Spent by this agent (its drift converged, or Git moved on): the others keep theirs.
      await c.query(
        `UPDATE approvals SET bindings = jsonb_set(bindings, ARRAY[$2::text], $3::jsonb) WHERE sha = $1 AND at = $4`,
        [sha, this.agentId, binding(a.keys, true), a.at],
      );
      wrote = true;
    }
    return wrote;
  }

  private async upsertResources(
    c: Client,
    keys: readonly string[],
    records: ReadonlyArray<ResourceRecord | undefined>,
  ): Promise<void> {
    await c.query(
      `INSERT INTO resources (scope, key, record)
       SELECT $1, k, r FROM unnest($2::text[], $3::jsonb[]) AS t(k, r)
       ON CONFLICT (scope, key) DO UPDATE SET record = EXCLUDED.record, updated_at = now()`,
      [this.agentId, keys, records.map((r) => json(r))],
    );
  }

  private async insertAudit(c: Client, records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    await c.query('INSERT INTO audit (agent_id, record) SELECT $1, r FROM unnest($2::jsonb[]) AS t(r)', [
      this.agentId,
      records.map((r) => JSON.stringify(r)),
    ]);
  }
}

/** Whether `state` differs from what this agent last read or wrote (the fields `save` writes; never the bucket). */
function changed(state: PersistedState, base: Baseline): boolean {
  if (json(state.freeze) !== base.freeze || state.mode !== base.mode || json(state.soak) !== base.soak)
    return true;
  if (json(state.revision) !== base.accepted) return true;
  if (state.approvals.length !== base.approvals.size) return true;
  for (const a of state.approvals) if (json(base.approvals.get(a.sha)) !== json(a)) return true;
  const keys = Object.keys(state.resources);
  if (keys.length !== base.resources.size) return true;
  return keys.some((k) => base.resources.get(k) !== json(state.resources[k]));
}

/** Per-transaction callbacks, run once it committed (the baseline follows only what is durable). */
const afterCommit = new WeakMap<Client, Array<() => void>>();
