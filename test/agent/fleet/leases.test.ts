/**
 * Shard leases and the conditional write-ahead against a REAL PostgreSQL
 * server (test/helpers/postgres.ts): races, expiry and takeover by the
 * database clock, the fencing proof (a holder whose renew loop stopped past its
 * TTL can neither renew nor record an intent), a lost lease noticed at once,
 * a lost database failing closed.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, beforeEach, test } from 'node:test';
import pg from 'pg';
import { recordIntents } from '../../../agent/fleet/fence.js';
import { ensureLeaseSchema, ShardLeases } from '../../../agent/fleet/leases.js';
import { createLogger } from '../../../agent/log.js';
import { StewardError } from '../../../core/errors.js';
import { type PgServer, startPostgres } from '../../helpers/postgres.js';

let server: PgServer;
const pools: pg.Pool[] = [];
const log = createLogger('silent');

before(async () => {
  server = await startPostgres();
});
after(async () => {
  await Promise.all(pools.splice(0).map((p) => p.end()));
  await server?.destroy();
});
beforeEach(async () => {
  await server.query(
    `DROP TABLE IF EXISTS steward_shard_config, steward_shard_leases, steward_shard_epochs,
       steward_shard_members, steward_fenced_actions`,
  );
  await server.query("DELETE FROM schema_version WHERE component = 'shards'").catch(() => undefined);
});

function pool(): pg.Pool {
  const p = new pg.Pool({ connectionString: server.url, max: 2, connectionTimeoutMillis: 2_000 });
  p.on('error', () => undefined); // a killed server: reported by the queries
  pools.push(p);
  return p;
}

/** Polls the database (its clock) until the lease of `shard` has expired. */
async function untilExpired(shard: number): Promise<void> {
  for (;;) {
    const [r] = await server.query<{ expired: boolean }>(
      'SELECT expires_at <= now() AS expired FROM steward_shard_leases WHERE shard = $1',
      [shard],
    );
    if (r?.expired) return;
    await new Promise((res) => setImmediate(res));
  }
}

test('ensureLeaseSchema: idempotent when many agents start at once; a different count is refused', async () => {
  const p = pool();
  await Promise.all(Array.from({ length: 6 }, () => ensureLeaseSchema(p, 16)));
  const [v] = await server.query<{ version: number }>(
    "SELECT version FROM schema_version WHERE component = 'shards'",
  );
  assert.equal(v?.version, 1, 'the lease tables are a versioned migration');
  const [n] = await server.query<{ n: string }>('SELECT count(*) AS n FROM steward_shard_leases');
  assert.equal(Number(n!.n), 16);
  await assert.rejects(ensureLeaseSchema(p, 32), (e: unknown) => {
    assert.ok(e instanceof StewardError && e.code === 'SHARD_COUNT_MISMATCH');
    assert.match(e.message, /pins 16/);
    return true;
  });
});

test('two agents race for one shard 200 times: exactly one winner each time, the epoch strictly increases', async () => {
  const p1 = pool();
  const p2 = pool();
  await ensureLeaseSchema(p1, 1);
  const a = new ShardLeases({ pool: p1, agent: 'a', count: 1, ttlMs: 60_000, log });
  const b = new ShardLeases({ pool: p2, agent: 'b', count: 1, ttlMs: 60_000, log });
  let last = 0;
  const wins = { a: 0, b: 0 };
  for (let i = 0; i < 200; i++) {
    const [ga, gb] = await Promise.all([a.tryAcquire([0]), b.tryAcquire([0])]);
    assert.equal(ga.length + gb.length, 1, `round ${i}: ${ga.length} + ${gb.length} winners`);
    const winner = ga.length === 1 ? a : b;
    wins[winner === a ? 'a' : 'b']++;
    const epoch = winner.lease(0)!.epoch;
    assert.ok(epoch > last, `round ${i}: epoch ${epoch} after ${last}`);
    last = epoch;
    // The lease runs out (by the database clock) before the next round.
    await server.query("UPDATE steward_shard_leases SET expires_at = now() - interval '1 second'");
  }
  const epochs = await server.query<{ epoch: string; holder: string }>(
    'SELECT epoch, holder FROM steward_shard_epochs WHERE shard = 0 ORDER BY epoch',
  );
  assert.deepEqual(
    epochs.map((e) => Number(e.epoch)),
    Array.from({ length: 200 }, (_, i) => i + 1),
    'every epoch logged once, in order',
  );
  assert.ok(wins.a + wins.b === 200);
  await a.stop();
  await b.stop();
});

test('fencing: a holder whose renew loop stopped past its TTL can neither renew nor record an intent; the taker can', async () => {
  const p1 = pool();
  const p2 = pool();
  await ensureLeaseSchema(p1, 4);
  const ttlMs = 800;
  const a = new ShardLeases({ pool: p1, agent: 'a', count: 4, ttlMs, marginMs: 200, log });
  const b = new ShardLeases({ pool: p2, agent: 'b', count: 4, ttlMs, marginMs: 200, log });
  assert.deepEqual(await a.tryAcquire([2]), [2]);
  const stale = { shard: 2, epoch: a.lease(2)!.epoch };
  const aborted = once(a.lease(2)!.signal, 'abort');

  // While the lease holds: the intent is recorded (the control: the insert works at all).
  const ok = await recordIntents(p1, a.holder, [stale], 0, [
    { action: 'a-1', resource: 'Ec2Instance/x', shard: 2 },
  ]);
  assert.deepEqual(
    ok.map((r) => [r.action, r.epoch]),
    [['a-1', stale.epoch]],
  );
  // Another agent cannot take a live lease.
  assert.deepEqual(await b.tryAcquire([2]), []);

  // a is "paused": its renew loop does not run. Its local view gives up first (expiry − margin)…
  await aborted;
  assert.equal(a.lease(2), null);
  // …and once the database says it expired, a's old epoch records nothing even before anyone took over.
  await untilExpired(2);
  assert.deepEqual(
    await recordIntents(p1, a.holder, [stale], 0, [{ action: 'a-2', resource: 'Ec2Instance/x', shard: 2 }]),
    [],
  );
  // b takes it over with a new epoch.
  assert.deepEqual(await b.tryAcquire([2]), [2]);
  const taken = b.lease(2)!;
  assert.equal(taken.epoch, stale.epoch + 1);
  // a wakes up: its insert under the old epoch fails (even if it skipped its local check)…
  assert.deepEqual(
    await recordIntents(p1, a.holder, [stale], 0, [{ action: 'a-3', resource: 'Ec2Instance/x', shard: 2 }]),
    [],
  );
  // …an insert as the new holder but with the old epoch fails too (the epoch is the fencing token)…
  assert.deepEqual(
    await recordIntents(p2, b.holder, [stale], 0, [{ action: 'b-0', resource: 'Ec2Instance/x', shard: 2 }]),
    [],
  );
  // …and its renew fails: the lease is not held.
  await a.tick();
  assert.equal(a.lease(2), null);
  const [row] = await server.query<{ holder: string; epoch: string }>(
    'SELECT holder, epoch FROM steward_shard_leases WHERE shard = 2',
  );
  assert.equal(row!.holder, b.holder);
  assert.equal(Number(row!.epoch), taken.epoch);
  const recorded = await recordIntents(p2, b.holder, [{ shard: 2, epoch: taken.epoch }], 0, [
    { action: 'b-1', resource: 'Ec2Instance/x', shard: 2 },
  ]);
  assert.deepEqual(
    recorded.map((r) => r.action),
    ['b-1'],
  );
  const actions = await server.query<{ action: string; epoch: string; holder: string }>(
    'SELECT action, epoch, holder FROM steward_fenced_actions ORDER BY started_at',
  );
  assert.deepEqual(
    actions.map((x) => [x.action, Number(x.epoch), x.holder]),
    [
      ['a-1', stale.epoch, a.holder],
      ['b-1', taken.epoch, b.holder],
    ],
  );
  await a.stop();
  await b.stop();
});

test('the margin: a lease with less than the margin left (database clock) admits no intent', async () => {
  const p1 = pool();
  await ensureLeaseSchema(p1, 1);
  const a = new ShardLeases({ pool: p1, agent: 'a', count: 1, ttlMs: 60_000, log });
  await a.tryAcquire([0]);
  const lease = { shard: 0, epoch: a.lease(0)!.epoch };
  await server.query("UPDATE steward_shard_leases SET expires_at = now() + interval '2 seconds'");
  const intent = [{ action: 'm-1', resource: 'Ec2Instance/y', shard: 0 }];
  assert.deepEqual(await recordIntents(p1, a.holder, [lease], 5_000, intent), []);
  assert.equal((await recordIntents(p1, a.holder, [lease], 500, intent)).length, 1);
  await a.stop();
});

test('a lease taken away is noticed at the next renew: dropped locally and its signal aborted (LEASE_LOST)', async () => {
  const p1 = pool();
  await ensureLeaseSchema(p1, 2);
  const a = new ShardLeases({ pool: p1, agent: 'a', count: 2, ttlMs: 60_000, log });
  await a.tick(); // alone: both shards are its target
  assert.deepEqual(
    a.heldShards().map((h) => h.shard),
    [0, 1],
  );
  const signal = a.lease(1)!.signal;
  await server.query(
    "UPDATE steward_shard_leases SET holder = 'intruder', epoch = epoch + 1 WHERE shard = 1",
  );
  await a.tick();
  assert.deepEqual(
    a.heldShards().map((h) => h.shard),
    [0],
  );
  assert.equal(signal.aborted, true);
  assert.equal((signal.reason as StewardError).code, 'LEASE_LOST');
  await a.stop();
});

test('three agents share the shards fairly; one stopping hands its shards over at the next renew', async () => {
  const ps = [pool(), pool(), pool()];
  await ensureLeaseSchema(ps[0]!, 16);
  const agents = ['x', 'y', 'z'].map(
    (id, i) => new ShardLeases({ pool: ps[i]!, agent: id, count: 16, ttlMs: 60_000, log }),
  );
  // Everyone registers, then everyone acquires its target (two rounds: targets need the members).
  for (let round = 0; round < 3; round++) for (const l of agents) await l.tick();
  const held = agents.map((l) => l.heldShards().map((h) => h.shard));
  assert.deepEqual(
    held.flat().sort((a, b) => a - b),
    Array.from({ length: 16 }, (_, i) => i),
  );
  for (const h of held) assert.ok(h.length >= 5 && h.length <= 6, `fair share: ${held.map((x) => x.length)}`);
  await agents[2]!.stop(); // SIGTERM: released at once, not left to expire
  for (const l of agents.slice(0, 2)) await l.tick();
  const after2 = agents.slice(0, 2).map((l) => l.heldShards().map((h) => h.shard));
  assert.deepEqual(
    after2.flat().sort((a, b) => a - b),
    Array.from({ length: 16 }, (_, i) => i),
  );
  for (const l of agents.slice(0, 2)) await l.stop();
});

test('PostgreSQL lost: every shard dropped at once (fail closed) and the error reported; recovered when it returns', async () => {
  const p1 = pool();
  await ensureLeaseSchema(p1, 2);
  const a = new ShardLeases({ pool: p1, agent: 'a', count: 2, ttlMs: 60_000, log });
  await a.tick();
  assert.equal(a.heldShards().length, 2);
  assert.equal(a.error, null);
  const signal = a.lease(0)!.signal;
  await server.kill();
  try {
    await a.tick();
    assert.equal(a.heldShards().length, 0);
    assert.equal(signal.aborted, true);
    assert.ok(a.error !== null);
  } finally {
    await server.start();
  }
  // The old incarnation's rows are still live in the database: the same holder renews nothing it dropped,
  // and gets them back only by acquiring (expired or released). Here they are released by hand.
  await server.query("UPDATE steward_shard_leases SET holder = NULL, expires_at = '-infinity'");
  // A pooled connection the restart cut may fail one more tick (still failing closed); a few ticks recover.
  for (let i = 0; i < 5; i++) {
    await a.tick();
    if (a.error === null) break;
  }
  assert.equal(a.error, null);
  assert.equal(a.heldShards().length, 2);
  await a.stop();
});
