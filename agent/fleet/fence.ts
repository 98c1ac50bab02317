/**
 * The fence for actions on shared resources (SPEC §11, §9): an agent acts on
 * a resource of a shared kind (EC2) only while it holds the lease of the
 * resource's shard, and the record of the action is written CONDITIONALLY on
 * that lease's epoch.
 *
 * - `heldNow(key)`: local and synchronous — the drift of resources on shards
 *   not held here is detected and reported, but held (`held: shard`).
 * - `admit(intents)`: the conditional write-ahead. One statement (one
 *   transaction) locks the lease rows `FOR SHARE` where holder and epoch are
 *   ours and `expires_at > now() + margin`, and inserts the intents
 *   (`steward_fenced_actions`) only for those shards. A concurrent acquire of
 *   the shard (an UPDATE of the row) waits for this statement, so an intent
 *   exists only under a lease that was valid when it was written. Everything
 *   else is not admitted (held). A database error throws: act on nothing.
 * - `signalFor(key)`: the AbortSignal of the shard's lease (fires at expiry −
 *   margin on the monotonic clock, or when the lease is lost); every cloud call
 *   of the action carries it.
 * - `finish(action, outcome)`: the outcome, stamped with the database time and
 *   `in_lease` (whether the same holder and epoch still held a live lease when
 *   it was recorded), so the audit can prove that no two actions overlapped.
 */
import pg from 'pg';
import { shardOf } from '../../policies/shards.js';
import type { KindDefinition } from '../../providers/types.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { type HeldShard, ShardLeases } from './leases.js';

/** Providers whose resources several agents can reach: their kinds are sharded and fenced. */
export const SHARED_PROVIDERS: ReadonlySet<string> = new Set(['aws-ec2']);

export interface FenceIntent {
  key: string;
  action: string;
}

export interface ShardStatus {
  count: number;
  held: number[];
  /** Epoch of each held shard, by shard number. */
  epochs: Record<string, number>;
  error: string | null;
}

/** What the reconciler needs of the fence (agent/reconciler.ts). */
export interface ActionFence {
  /** Whether resources of this kind are shared (sharded and fenced). */
  covers(kind: string): boolean;
  /** Whether this agent holds the shard of `key` now (local view, no I/O). */
  heldNow(key: string): boolean;
  /** Why the lease database cannot be used now (null: it can). */
  readonly error: string | null;
  /** The conditional write-ahead: the keys whose intents were recorded under a valid lease. Throws on a database error. */
  admit(intents: readonly FenceIntent[]): Promise<Set<string>>;
  /** The AbortSignal every cloud call for an admitted key carries. */
  signalFor(key: string): AbortSignal | undefined;
  /** Records an action's outcome (with its epoch); `not-started`: admitted, never begun. Throws on a database error. */
  finish(action: string, outcome: 'applied' | 'failed' | 'not-started'): Promise<void>;
  status(): ShardStatus;
}

/**
 * The conditional insert itself: the intents whose shard `holder` holds under exactly that epoch, with more
 * than `marginMs` left by the database clock, are recorded; the others are not. One statement: the lease
 * rows are locked FOR SHARE until it commits, so no acquire of those shards interleaves.
 */
export async function recordIntents(
  pool: pg.Pool,
  holder: string,
  leases: ReadonlyArray<{ shard: number; epoch: number }>,
  marginMs: number,
  intents: ReadonlyArray<{ action: string; resource: string; shard: number }>,
): Promise<Array<{ action: string; resource: string; shard: number; epoch: number }>> {
  if (leases.length === 0 || intents.length === 0) return [];
  const r = await pool.query<{ action: string; resource: string; shard: number; epoch: string }>(
    `WITH ok AS (
       SELECT l.shard, l.epoch FROM steward_shard_leases l
         JOIN unnest($2::int[], $3::bigint[]) AS h(shard, epoch) ON l.shard = h.shard AND l.epoch = h.epoch
        WHERE l.holder = $1 AND l.expires_at > now() + $4::interval
        FOR SHARE OF l)
     INSERT INTO steward_fenced_actions (action, resource, shard, epoch, holder, started_at)
     SELECT i.action, i.resource, i.shard, ok.epoch, $1, clock_timestamp()
       FROM unnest($5::text[], $6::text[], $7::int[]) AS i(action, resource, shard)
       JOIN ok ON ok.shard = i.shard
     RETURNING action, resource, shard, epoch`,
    [
      holder,
      leases.map((l) => l.shard),
      leases.map((l) => l.epoch),
      `${marginMs} milliseconds`,
      intents.map((i) => i.action),
      intents.map((i) => i.resource),
      intents.map((i) => i.shard),
    ],
  );
  return r.rows.map((x) => ({ ...x, epoch: Number(x.epoch) }));
}

export class LeaseFence implements ActionFence {
  /** Admitted actions not finished yet: action → its shard and epoch. */
  private readonly open = new Map<string, { key: string; shard: number; epoch: number }>();
  /** `${shard}:${epoch}` under which an action was aborted: never released early (it expires instead). */
  private readonly tainted = new Set<string>();
  private readonly admittedSignal = new Map<string, AbortSignal>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly leases: ShardLeases,
    private readonly sharedKinds: ReadonlySet<string>,
  ) {}

  /** For ShardLeases' `busy`: an action in flight, or one aborted under the current lease. */
  busy(shard: number): boolean {
    for (const a of this.open.values()) if (a.shard === shard) return true;
    const held = this.leases.lease(shard);
    return held !== null && this.tainted.has(`${shard}:${held.epoch}`);
  }

  covers(kind: string): boolean {
    return this.sharedKinds.has(kind);
  }

  get error(): string | null {
    return this.leases.error;
  }

  shardOf(key: string): number {
    return shardOf(key, this.leases.count);
  }

  heldNow(key: string): boolean {
    return this.leases.lease(this.shardOf(key)) !== null;
  }

  async admit(intents: readonly FenceIntent[]): Promise<Set<string>> {
    const admitted = new Set<string>();
    if (intents.length === 0) return admitted;
    const leases = new Map<number, HeldShard>();
    const candidates: Array<FenceIntent & { shard: number }> = [];
    for (const i of intents) {
      const shard = this.shardOf(i.key);
      const lease = this.leases.lease(shard);
      if (!lease) continue;
      leases.set(shard, lease);
      candidates.push({ ...i, shard });
    }
    if (candidates.length === 0) return admitted;
    const rows = await recordIntents(
      this.pool,
      this.leases.holder,
      [...leases.values()].map((l) => ({ shard: l.shard, epoch: l.epoch })),
      this.leases.marginMs,
      candidates.map((c) => ({ action: c.action, resource: c.key, shard: c.shard })),
    );
    for (const row of rows) {
      const lease = leases.get(row.shard)!;
      admitted.add(row.resource);
      this.open.set(row.action, { key: row.resource, shard: row.shard, epoch: Number(row.epoch) });
      this.admittedSignal.set(row.resource, lease.signal);
    }
    return admitted;
  }

  signalFor(key: string): AbortSignal | undefined {
    return this.admittedSignal.get(key);
  }

  async finish(action: string, outcome: 'applied' | 'failed' | 'not-started'): Promise<void> {
    const a = this.open.get(action);
    if (!a) return;
    const signal = this.admittedSignal.get(a.key);
    if (outcome === 'failed' && signal?.aborted) this.tainted.add(`${a.shard}:${a.epoch}`);
    try {
      await this.pool.query(
        `UPDATE steward_fenced_actions a SET outcome = $2, finished_at = clock_timestamp(),
                in_lease = EXISTS (SELECT 1 FROM steward_shard_leases l WHERE l.shard = a.shard
                  AND l.epoch = a.epoch AND l.holder = a.holder AND l.expires_at > clock_timestamp())
          WHERE a.action = $1 AND a.holder = $3`,
        [action, outcome, this.leases.holder],
      );
    } finally {
      this.open.delete(action);
      if (this.admittedSignal.get(a.key) === signal) this.admittedSignal.delete(a.key);
    }
  }

  status(): ShardStatus {
    const held = this.leases.heldShards();
    return {
      count: this.leases.count,
      held: held.map((h) => h.shard),
      epochs: Object.fromEntries(held.map((h) => [String(h.shard), h.epoch])),
      error: this.leases.error,
    };
  }
}

export interface Shards {
  fence: LeaseFence;
  leases: ShardLeases;
  /** Registers (ensures the schema), takes this agent's shards and starts the renew loop. */
  start(): Promise<void>;
  /** Releases idle shards (SIGTERM) and closes the pool. */
  stop(): Promise<void>;
}

/**
 * The shards of an agent with `fleet.shards` (null without): a bounded pool on `state.postgres`, the
 * leases and the fence over the kinds of the shared providers.
 */
export function openShards(
  config: Config,
  kinds: ReadonlyMap<string, KindDefinition>,
  log: Logger,
  onChange?: (held: readonly HeldShard[]) => void,
): Shards | null {
  const shards = config.fleet.shards;
  const pgc = config.state.postgres;
  if (!shards || !pgc) return null;
  const pool = new pg.Pool({
    connectionString: pgc.url,
    ...(pgc.password !== null ? { password: pgc.password } : {}),
    max: pgc.poolSize,
    connectionTimeoutMillis: pgc.connectTimeoutMs,
    // A query that hangs must not outlive the lease it serves: the renew loop retries at the next tick.
    query_timeout: Math.max(500, Math.floor(shards.leaseTtlMs / 3)),
    application_name: `steward ${config.agent.id}`,
  });
  // An idle connection that breaks (PostgreSQL restarted) is reported by the next query, not thrown here.
  pool.on('error', (e) => log.warn({ err: e.message }, 'PostgreSQL connection lost'));
  let fence: LeaseFence | null = null;
  const leases = new ShardLeases({
    pool,
    agent: config.agent.id,
    count: shards.count,
    ttlMs: shards.leaseTtlMs,
    log,
    busy: (s) => fence?.busy(s) ?? false,
    ...(onChange ? { onChange } : {}),
  });
  const shared = new Set(
    [...kinds.values()].filter((k) => SHARED_PROVIDERS.has(k.provider)).map((k) => k.kind),
  );
  fence = new LeaseFence(pool, leases, shared);
  const f = fence;
  return {
    fence: f,
    leases,
    start: () => leases.start(),
    async stop() {
      await leases.stop();
      await pool.end().catch(() => undefined);
    },
  };
}
