/**
 * Test helper: a sharded EC2 fleet of real `steward run` processes — a real
 * moto_server with `instances` instances tagged Env=dev, manifests wanting
 * Env=prod, a real PostgreSQL for the shard leases — and the fencing proof
 * read back from the database (no two holders overlapping on one instance,
 * every action under its holder's epoch). Shared by the fleet-shards tests.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { shardOf } from '../../policies/shards.js';
import { type AgentProcess, killAllAgents, startAgentProcess, until } from './agent-process.js';
import { createTestRepo } from './git-repo.js';
import { type Ec2World, ec2World, startMoto } from './moto.js';
import { startPostgres } from './postgres.js';

export interface Fenced {
  action: string;
  resource: string;
  shard: number;
  epoch: string;
  holder: string;
  started_at: Date;
  outcome: string | null;
  finished_at: Date | null;
  in_lease: boolean | null;
}

export interface Epoch {
  shard: number;
  epoch: string;
  holder: string;
  acquired_at: Date;
}

export interface ShardFleet {
  base: string;
  world: Ec2World;
  ids: string[];
  configs: string[];
  procs: AgentProcess[];
  rows<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Leases held now (database clock). */
  live(): Promise<Array<{ shard: number; holder: string; epoch: string }>>;
  /** The database's clock now. */
  now(): Promise<Date>;
  stderr(): string;
  /** Polls (bounded) until every instance has Env=prod. */
  converged(what: string): Promise<void>;
  /** Starts (again) the agent process of config `i`. */
  start(i: number): AgentProcess;
}

export async function startShardFleet(
  t: { after: (fn: () => Promise<void>) => void },
  o: { agents: number; instances: number; shards: number; ttlMs: number },
): Promise<ShardFleet> {
  const base = await mkdtemp(join(tmpdir(), 'steward-shards-'));
  const moto = await startMoto();
  const db = await startPostgres();
  const watch = new pg.Client({ connectionString: db.url });
  t.after(async () => {
    killAllAgents();
    await watch.end().catch(() => undefined);
    await db.destroy();
    await moto.stop();
    await rm(base, { recursive: true, force: true });
  });
  await watch.connect();
  const world = await ec2World(moto);
  const ids: string[] = [];
  for (let left = o.instances; left > 0; left -= 100)
    ids.push(...(await world.run(Math.min(100, left), { tags: { Env: 'dev' } })));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  const name = (i: number) => `i${String(i).padStart(3, '0')}`;
  await repo.write(
    'fleet/ec2.yaml',
    ids
      .map(
        (id, i) =>
          `apiVersion: steward/v1\nkind: Ec2Instance\nmetadata: { name: ${name(i)} }\nspec:\n  selector: { instanceId: ${id} }\n  tags: { Env: prod }\n`,
      )
      .join('---\n'),
  );
  await repo.commit(`${o.instances} instances`);
  const configs: string[] = [];
  for (let i = 0; i < o.agents; i++) {
    const dir = join(base, `agent-${i}`);
    await mkdir(dir);
    const config = join(dir, 'steward.yaml');
    await writeFile(
      config,
      [
        `agent: { id: ec2-${i} }`,
        `source: { url: ${JSON.stringify(repo.workDir)}, path: fleet, interval: 1h }`,
        `providers: { aws-ec2: { region: ${world.region}, endpoint: "${moto.url}" } }`,
        'reconcile: { interval: 300ms, mode: enforce }',
        'guardrails:',
        '  maxActionsPerCycle: 100000',
        '  massDrift: { maxDrifted: 100000, maxDriftedPercent: 100, minManaged: 5 }',
        '  rateLimit: { actionsPerMinute: 100000, burst: 100000 }',
        '  soak: { observeCycles: 0 }',
        '  backoff: { base: 1s, factor: 1, max: 1s, jitter: 0 }',
        '  nonConvergence: { alertAfterCycles: 1000 }',
        'admin: { listen: "127.0.0.1:0" }',
        `state: { dir: state, postgres: { url: ${JSON.stringify(db.url)}, poolSize: 3 } }`,
        `fleet: { shards: { count: ${o.shards}, leaseTtl: ${o.ttlMs}ms } }`,
        'log: { level: warn }',
      ].join('\n'),
    );
    configs.push(config);
  }
  const procs: AgentProcess[] = configs.map((c) => startAgentProcess(['run', '-c', c]));
  const rows = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) =>
    (await watch.query<R>(sql, params)).rows;
  const stderr = () => procs.map((p, i) => `agent ${i}: ${p.stderr().slice(-800)}`).join('\n');
  const live = () =>
    rows<{ shard: number; holder: string; epoch: string }>(
      'SELECT shard, holder, epoch FROM steward_shard_leases WHERE holder IS NOT NULL AND expires_at > now() ORDER BY shard',
    );
  const fleet: ShardFleet = {
    base,
    world,
    ids,
    configs,
    procs,
    rows,
    live,
    now: async () => (await rows<{ now: Date }>('SELECT clock_timestamp() AS now'))[0]!.now,
    stderr,
    async converged(what) {
      let left = -1;
      await until(
        async () => {
          left = (await world.describe(ids)).filter(
            (i) => i.Tags?.find((x) => x.Key === 'Env')?.Value !== 'prod',
          ).length;
          if (left === 0) return true;
          await delay(250); // the poll interval of a describe of every instance
          return false;
        },
        `${what} (${left} not yet; ${stderr()})`,
        120_000,
      );
    },
    start(i) {
      procs[i] = startAgentProcess(['run', '-c', configs[i]!]);
      return procs[i]!;
    },
  };
  await until(
    async () =>
      (await rows<{ t: string | null }>("SELECT to_regclass('steward_fenced_actions')::text AS t"))[0]!.t !==
      null,
    `the lease tables (${stderr()})`,
    60_000,
  );
  // Every shard held, by all the agents (each has registered and taken its share).
  await until(
    async () => {
      const l = await live();
      return l.length === o.shards && new Set(l.map((x) => x.holder.split('#')[0])).size === o.agents;
    },
    `all shards held by ${o.agents} agents (${stderr()})`,
    60_000,
  );
  return fleet;
}

/**
 * The fencing proof from the database: every action under an epoch of its own holder, on its resource's
 * shard, its intent recorded while that epoch was the shard's current one (after it began, before the next
 * began); the epochs of a shard without gaps and in time order; and no two holders' actions on one resource
 * overlapping in time. An action lasts until its outcome was recorded, but never beyond its lease: its
 * calls were aborted before the lease ended, so it ends at the latest when the shard's NEXT epoch began
 * (a paused agent records the outcome of an aborted call late; a killed one never does).
 */
export async function assertFenced(
  fleet: ShardFleet,
  shards: number,
): Promise<{ fenced: Fenced[]; epochs: Epoch[] }> {
  const fenced = await fleet.rows<Fenced>('SELECT * FROM steward_fenced_actions ORDER BY started_at');
  const epochs = await fleet.rows<Epoch>(
    'SELECT shard, epoch, holder, acquired_at FROM steward_shard_epochs ORDER BY shard, epoch',
  );
  const key = (s: number, e: string | number) => `${s}:${e}`;
  const epochOf = new Map(epochs.map((e) => [key(e.shard, e.epoch), e]));
  const wrong = fenced.filter(
    (f) => epochOf.get(key(f.shard, f.epoch))?.holder !== f.holder || shardOf(f.resource, shards) !== f.shard,
  );
  assert.deepEqual(wrong, [], 'every action under its holder’s epoch, on its resource’s shard');
  const nextAt = (f: Fenced): number => {
    const next = epochOf.get(key(f.shard, Number(f.epoch) + 1));
    return next ? next.acquired_at.getTime() : Number.POSITIVE_INFINITY;
  };
  const outside = fenced.filter(
    (f) =>
      f.started_at < epochOf.get(key(f.shard, f.epoch))!.acquired_at || f.started_at.getTime() >= nextAt(f),
  );
  assert.deepEqual(
    outside.map((f) => `${f.resource}: ${f.holder}@${f.epoch} at ${f.started_at.toISOString()}`),
    [],
    'every intent recorded while its epoch was current',
  );
  for (let s = 0; s < shards; s++) {
    const es = epochs.filter((e) => e.shard === s);
    for (let i = 1; i < es.length; i++) {
      assert.equal(Number(es[i]!.epoch), Number(es[i - 1]!.epoch) + 1, `shard ${s}: epochs without a gap`);
      assert.ok(es[i]!.acquired_at >= es[i - 1]!.acquired_at, `shard ${s}: epoch ${es[i]!.epoch} in order`);
    }
  }
  const end = (f: Fenced): number =>
    Math.min(f.finished_at?.getTime() ?? Number.POSITIVE_INFINITY, nextAt(f));
  const byResource = new Map<string, Fenced[]>();
  for (const f of fenced) byResource.set(f.resource, [...(byResource.get(f.resource) ?? []), f]);
  const overlaps: string[] = [];
  for (const [resource, list] of byResource)
    for (let i = 0; i < list.length; i++)
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i]!;
        const b = list[j]!;
        if (a.holder === b.holder) continue;
        if (a.started_at.getTime() < end(b) && b.started_at.getTime() < end(a))
          overlaps.push(`${resource}: ${a.holder}@${a.epoch} and ${b.holder}@${b.epoch}`);
      }
  assert.deepEqual(overlaps, [], 'no instance acted on by two agents at once');
  return { fenced, epochs };
}
