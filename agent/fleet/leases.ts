/**
 * Shard leases in PostgreSQL: which agent may act on which shard of the shared
 * (cloud) resources, and under which epoch (fencing token). SPEC §11, §9.
 *
 *   steward_shard_leases(shard PK, holder, epoch, expires_at, acquired_at)
 *
 * - Time is the DATABASE's (`now()`), never an agent's wall clock: an agent
 *   with a skewed clock cannot extend or steal a lease.
 * - acquire: only a free or expired row is taken (`UPDATE … WHERE holder IS NULL
 *   OR expires_at <= now()`; READ COMMITTED re-checks the condition on the row
 *   a concurrent winner wrote, so of two racing agents exactly one gets it), and
 *   every change of holder increments the epoch; each epoch is logged in
 *   `steward_shard_epochs` (shard, epoch, holder, acquired_at) for the audit.
 * - renew: only while holder AND epoch match and the lease has not expired; a
 *   shard the renew does not return is lost and dropped locally at once.
 * - Locally, a lease is trusted until (monotonic time the renew was SENT) + ttl −
 *   margin: the database stamped its expiry later than that, so the local view
 *   always ends first. Each held shard has an AbortSignal that fires then (or
 *   at once when the lease is lost): every cloud call for the shard carries it.
 * - A renew loop runs every ttl/3: heartbeat (steward_shard_members), renew,
 *   compute the fair target (policies/shards.ts, over the live members), let
 *   go of shards no longer ours, take free ones that are, and take orphans
 *   (expired for more than one renew interval, whoever their target is: their
 *   target agent is slow or gone). A shard is released
 *   explicitly only when no action on it is in flight or was aborted under this
 *   lease; otherwise it is simply not renewed and expires (the margin then bounds
 *   a call that was already sent).
 * - Any database error drops every shard locally (fail closed) and is reported
 *   by `error` until a tick succeeds again.
 * - `holder` is the agent id plus a per-process nonce: a restarted agent is a new
 *   holder and waits for its old incarnation's leases to expire.
 */
import type pg from 'pg';
import { errorMessage, StewardError } from '../../core/errors.js';
import { targetShards } from '../../policies/shards.js';
import type { Logger } from '../log.js';
import { type Migration, migrate } from '../state/pg-store.js';
import { nodeCrypto } from '../../core/builtins.js';

/** The advisory lock key the shard count is pinned under (any constant; "STWD"). */
const DDL_LOCK = 0x5354_5744;

/**
 * The lease tables, as versioned migrations (`schema_version` component `shards`, run at start under
 * the migration lock like the state's and the agents'). Version 1 is written `IF NOT EXISTS`: a
 * database made before the tables were versioned keeps its tables and is marked version 1.
 */
export const SHARD_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE IF NOT EXISTS steward_shard_config (
        id int PRIMARY KEY CHECK (id = 1),
        shard_count int NOT NULL CHECK (shard_count > 0));
      CREATE TABLE IF NOT EXISTS steward_shard_leases (
        shard int PRIMARY KEY,
        holder text,
        epoch bigint NOT NULL DEFAULT 0,
        expires_at timestamptz NOT NULL DEFAULT '-infinity',
        acquired_at timestamptz);
      CREATE TABLE IF NOT EXISTS steward_shard_epochs (
        shard int NOT NULL,
        epoch bigint NOT NULL,
        holder text NOT NULL,
        acquired_at timestamptz NOT NULL,
        PRIMARY KEY (shard, epoch));
      CREATE TABLE IF NOT EXISTS steward_shard_members (
        agent text PRIMARY KEY,
        holder text NOT NULL,
        expires_at timestamptz NOT NULL);
      CREATE TABLE IF NOT EXISTS steward_fenced_actions (
        action text PRIMARY KEY,
        resource text NOT NULL,
        shard int NOT NULL,
        epoch bigint NOT NULL,
        holder text NOT NULL,
        started_at timestamptz NOT NULL,
        outcome text,
        finished_at timestamptz,
        in_lease boolean);
      CREATE INDEX IF NOT EXISTS steward_fenced_actions_resource ON steward_fenced_actions (resource, started_at);
    `,
  },
];

/** Migrates the lease tables, then pins the shard count (serialised by an advisory lock) and creates the lease rows. */
export async function ensureLeaseSchema(pool: pg.Pool, count: number): Promise<void> {
  await migrate(pool, 'shards', SHARD_MIGRATIONS);
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [DDL_LOCK]);
    await c.query(
      'INSERT INTO steward_shard_config (id, shard_count) VALUES (1, $1) ON CONFLICT DO NOTHING',
      [count],
    );
    const pinned = (await c.query<{ n: number }>('SELECT shard_count AS n FROM steward_shard_config'))
      .rows[0]!.n;
    if (pinned !== count)
      throw new StewardError(
        'SHARD_COUNT_MISMATCH',
        `fleet.shards.count is ${count} but the fleet's database pins ${pinned}: every agent must use the same count (resources would be split two ways). Set fleet.shards.count: ${pinned}, or stop every agent and change it for all at once (docs/fleet-shards.md).`,
        { configured: count, pinned },
      );
    await c.query(
      'INSERT INTO steward_shard_leases (shard) SELECT generate_series(0, $1::int - 1) ON CONFLICT DO NOTHING',
      [count],
    );
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}

export interface HeldShard {
  shard: number;
  epoch: number;
  /** Monotonic (performance.now) time until which the lease is trusted locally: expiry − margin. */
  validUntil: number;
  /** Fires at `validUntil`, or at once when the lease is lost or let go. */
  signal: AbortSignal;
}

export interface LeaseOptions {
  pool: pg.Pool;
  /** The agent id (stable across restarts): the fair target is computed over these. */
  agent: string;
  /** This process's holder token; default `<agent>#<nonce>`. */
  holder?: string;
  count: number;
  ttlMs: number;
  /** How long before expiry a lease stops being trusted; default ttl/4. */
  marginMs?: number;
  log: Logger;
  /** Whether an action on the shard is in flight or was aborted under its lease (then it is never released early). */
  busy?: (shard: number) => boolean;
  /** Called after every tick with the shards held. */
  onChange?: (held: readonly HeldShard[]) => void;
}

interface Held {
  epoch: number;
  validUntil: number;
  ctl: AbortController;
  timer: NodeJS.Timeout;
}

export class ShardLeases {
  readonly holder: string;
  readonly ttlMs: number;
  readonly marginMs: number;
  readonly renewMs: number;
  private readonly held = new Map<number, Held>();
  private loop: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private stopped = false;
  private lastError: string | null = 'not started';
  private prepared = false;
  /** An error no retry fixes (SHARD_COUNT_MISMATCH): start() throws it. */
  private fatal: StewardError | null = null;

  constructor(private readonly o: LeaseOptions) {
    this.holder = o.holder ?? `${o.agent}#${nodeCrypto().randomBytes(4).toString('hex')}`;
    this.ttlMs = o.ttlMs;
    this.marginMs = o.marginMs ?? Math.floor(o.ttlMs / 4);
    this.renewMs = Math.max(1, Math.floor(o.ttlMs / 3));
  }

  get count(): number {
    return this.o.count;
  }

  /** Why the lease database cannot be used (null: the last tick succeeded). */
  get error(): string | null {
    return this.lastError;
  }

  /** The shards held now and still trusted locally, ascending. */
  heldShards(): HeldShard[] {
    const now = performance.now();
    return [...this.held]
      .filter(([, h]) => h.validUntil > now && !h.ctl.signal.aborted)
      .sort(([a], [b]) => a - b)
      .map(([shard, h]) => ({ shard, epoch: h.epoch, validUntil: h.validUntil, signal: h.ctl.signal }));
  }

  /** The lease of one shard, if held and trusted now. */
  lease(shard: number): HeldShard | null {
    return this.heldShards().find((h) => h.shard === shard) ?? null;
  }

  /** Starts the renew loop (the first tick runs now and is awaited). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.tick();
    if (this.fatal) throw this.fatal;
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.loop = setTimeout(() => {
      this.loop = null;
      void this.tick().finally(() => this.schedule());
    }, this.renewMs);
  }

  /** One round: heartbeat, renew, let go, acquire. Never throws; a failure drops every shard locally. */
  tick(): Promise<void> {
    this.ticking ??= this.round().finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  private async round(): Promise<void> {
    const { pool } = this.o;
    const ttl = `${this.ttlMs} milliseconds`;
    try {
      if (!this.prepared) {
        await ensureLeaseSchema(pool, this.o.count);
        this.prepared = true;
      }
      const sent = performance.now();
      const live = await pool.query<{ agent: string }>(
        `WITH beat AS (
           INSERT INTO steward_shard_members (agent, holder, expires_at) VALUES ($1, $2, now() + $3::interval)
           ON CONFLICT (agent) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at)
         SELECT agent FROM steward_shard_members WHERE expires_at > now() AND agent <> $1`,
        [this.o.agent, this.holder, ttl],
      );
      await this.renew(sent);
      if (this.stopped) return;
      const target = new Set(
        targetShards(
          this.o.agent,
          this.o.count,
          live.rows.map((r) => r.agent),
        ),
      );
      const letGo = [...this.held.keys()].filter((s) => !target.has(s));
      if (letGo.length > 0) await this.letGo(letGo);
      const want = [...target].filter((s) => !this.held.has(s));
      if (want.length > 0) await this.tryAcquire(want);
      // Orphans: a shard whose target owner has not taken it one renew interval after it expired (that agent
      // is slow, or its heartbeat outlived it) is taken by whoever sees it; the target moves it back later.
      const orphans = Array.from({ length: this.o.count }, (_, s) => s).filter(
        (s) => !target.has(s) && !this.held.has(s) && !letGo.includes(s),
      );
      if (orphans.length > 0) await this.tryAcquire(orphans, this.renewMs);
      this.lastError = null;
    } catch (e) {
      if (e instanceof StewardError && e.code === 'SHARD_COUNT_MISMATCH') this.fatal = e;
      const msg = errorMessage(e);
      if (this.lastError !== msg)
        this.o.log.error({ err: msg }, 'shard leases: the database is unreachable; acting on no shard');
      this.lastError = msg;
      for (const s of [...this.held.keys()]) this.drop(s);
    } finally {
      this.o.onChange?.(this.heldShards());
    }
  }

  private async renew(sent: number): Promise<void> {
    if (this.held.size === 0) return;
    const shards = [...this.held.keys()];
    const epochs = shards.map((s) => this.held.get(s)!.epoch);
    const r = await this.o.pool.query<{ shard: number; epoch: string }>(
      `UPDATE steward_shard_leases l SET expires_at = now() + $4::interval
         FROM unnest($2::int[], $3::bigint[]) AS h(shard, epoch)
        WHERE l.shard = h.shard AND l.epoch = h.epoch AND l.holder = $1 AND l.expires_at > now()
       RETURNING l.shard, l.epoch`,
      [this.holder, shards, epochs, `${this.ttlMs} milliseconds`],
    );
    const kept = new Set(r.rows.map((x) => x.shard));
    for (const s of shards) {
      if (kept.has(s)) this.trust(s, Number(this.held.get(s)!.epoch), sent);
      else {
        this.o.log.warn({ shard: s }, 'shard lease lost: dropped before its expiry');
        this.drop(s);
      }
    }
  }

  /**
   * Takes those of `shards` that are free or expired — for more than `graceMs` when given (orphans) — with a
   * new epoch each; returns the ones taken.
   */
  async tryAcquire(shards: number[], graceMs?: number): Promise<number[]> {
    const sent = performance.now();
    const free =
      graceMs === undefined
        ? '(holder IS NULL OR expires_at <= now())'
        : `expires_at <= now() - ${Math.floor(graceMs)} * interval '1 millisecond'`;
    const r = await this.o.pool.query<{ shard: number; epoch: string }>(
      `WITH got AS (
         UPDATE steward_shard_leases SET holder = $1, epoch = epoch + 1,
                expires_at = now() + $3::interval, acquired_at = now()
          WHERE shard = ANY($2::int[]) AND ${free}
         RETURNING shard, epoch, acquired_at),
       logged AS (
         INSERT INTO steward_shard_epochs (shard, epoch, holder, acquired_at)
         SELECT shard, epoch, $1, acquired_at FROM got)
       SELECT shard, epoch FROM got`,
      [this.holder, shards, `${this.ttlMs} milliseconds`],
    );
    for (const row of r.rows) {
      this.trust(row.shard, Number(row.epoch), sent);
      this.o.log.info({ shard: row.shard, epoch: Number(row.epoch) }, 'shard lease acquired');
    }
    return r.rows.map((row) => row.shard);
  }

  /** Shards that are no longer ours: dropped locally; released in the database when nothing is in flight. */
  private async letGo(shards: number[]): Promise<void> {
    const idle = shards.filter((s) => !(this.o.busy?.(s) ?? false));
    const epochs = idle.map((s) => this.held.get(s)!.epoch);
    for (const s of shards) this.drop(s);
    if (idle.length > 0) await this.release(idle, epochs);
  }

  private async release(shards: number[], epochs: number[]): Promise<void> {
    await this.o.pool.query(
      `UPDATE steward_shard_leases l SET holder = NULL, expires_at = now()
         FROM unnest($2::int[], $3::bigint[]) AS h(shard, epoch)
        WHERE l.shard = h.shard AND l.epoch = h.epoch AND l.holder = $1`,
      [this.holder, shards, epochs],
    );
  }

  /** Trusts a lease until `sent` + ttl − margin (monotonic): its signal is (re)armed for then. */
  private trust(shard: number, epoch: number, sent: number): void {
    const validUntil = sent + this.ttlMs - this.marginMs;
    const prev = this.held.get(shard);
    if (prev && prev.epoch === epoch && !prev.ctl.signal.aborted) {
      clearTimeout(prev.timer);
      prev.validUntil = validUntil;
      prev.timer = this.arm(shard, prev.ctl, validUntil);
      return;
    }
    if (prev) this.drop(shard);
    const ctl = new AbortController();
    this.held.set(shard, { epoch, validUntil, ctl, timer: this.arm(shard, ctl, validUntil) });
  }

  private arm(shard: number, ctl: AbortController, at: number): NodeJS.Timeout {
    const t = setTimeout(
      () =>
        ctl.abort(
          new StewardError(
            'LEASE_EXPIRING',
            `the lease of shard ${shard} was not renewed in time; its calls were aborted before it expires (the next holder picks the resource up)`,
          ),
        ),
      Math.max(0, at - performance.now()),
    );
    t.unref();
    return t;
  }

  private drop(shard: number): void {
    const h = this.held.get(shard);
    if (!h) return;
    clearTimeout(h.timer);
    this.held.delete(shard);
    if (!h.ctl.signal.aborted)
      h.ctl.abort(
        new StewardError(
          'LEASE_LOST',
          `shard ${shard} is no longer held by this agent; its calls were aborted (the holder of the shard acts on it)`,
        ),
      );
  }

  /**
   * Stops the renew loop and releases every idle shard (SIGTERM): the next holder takes them at once
   * instead of after the TTL. A shard with an action in flight or aborted is left to expire.
   */
  async stop(): Promise<void> {
    const wasStarted = this.prepared || this.held.size > 0 || this.ticking !== null;
    this.stopped = true;
    if (this.loop) clearTimeout(this.loop);
    this.loop = null;
    await this.ticking;
    const shards = [...this.held.keys()];
    const idle = shards.filter((s) => !(this.o.busy?.(s) ?? false));
    const epochs = idle.map((s) => this.held.get(s)!.epoch);
    for (const s of shards) this.drop(s);
    if (!wasStarted) return; // never registered (a one-shot command): nothing to release
    try {
      if (idle.length > 0) await this.release(idle, epochs);
      await this.o.pool.query('DELETE FROM steward_shard_members WHERE agent = $1 AND holder = $2', [
        this.o.agent,
        this.holder,
      ]);
    } catch (e) {
      this.o.log.warn({ err: errorMessage(e) }, 'shard leases not released: they expire by themselves');
    }
  }
}
