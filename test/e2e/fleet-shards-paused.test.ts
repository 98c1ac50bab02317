/**
 * A paused agent (SIGSTOP past its lease TTL: a long GC, a frozen VM) cannot
 * act when it wakes up. Two real `steward run` processes share 40 instances
 * on moto over 4 shards; one is stopped, its shards move to the other, which
 * reverts a drift on every instance; the paused one is continued — the same
 * process, holding leases it believes in — and records no action under its
 * old epochs: it rejoins with new ones. From the fenced-actions table and the
 * epoch log.
 */
import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { until } from '../helpers/agent-process.js';
import { assertFenced, type Epoch, startShardFleet } from '../helpers/ec2-shards.js';

const SHARDS = 4;

test('an agent paused past its TTL: its shards move, and on waking it records nothing under its old epochs', async (t) => {
  const fleet = await startShardFleet(t, { agents: 2, instances: 40, shards: SHARDS, ttlMs: 2_000 });
  const { world, ids, procs, live, rows, stderr } = fleet;
  await fleet.converged('the first convergence');
  const drift = () =>
    world.client.send(new CreateTagsCommand({ Resources: ids, Tags: [{ Key: 'Env', Value: 'dev' }] }));

  const before = await live();
  const paused = before.find((l) => l.holder.startsWith('ec2-0#'))!.holder;
  const old = new Map(before.filter((l) => l.holder === paused).map((l) => [l.shard, Number(l.epoch)]));
  procs[0]!.child.kill('SIGSTOP');
  const stoppedAt = await fleet.now();
  await drift();
  // The other agent takes every shard of the paused one and reverts the drift on all 40 instances.
  await until(
    async () => (await live()).filter((l) => l.holder !== paused).length === SHARDS,
    `the paused agent's shards taken over (${stderr()})`,
    30_000,
  );
  await fleet.converged('converged by the other agent');

  procs[0]!.child.kill('SIGCONT');
  const resumedAt = await fleet.now();
  // The same process rejoins: it takes shards again, under new epochs.
  await until(
    async () => (await live()).some((l) => l.holder === paused),
    `the resumed agent holding a shard again (${stderr()})`,
    30_000,
  );
  await drift();
  await fleet.converged('converged by both');
  for (const p of procs) p.child.kill('SIGTERM');
  assert.deepEqual(await Promise.all(procs.map((p) => p.exited)), [0, 0], stderr());

  const { fenced, epochs } = await assertFenced(fleet, SHARDS);
  const afterStop = fenced.filter((f) => f.holder === paused && f.started_at >= stoppedAt);
  const stale = afterStop.filter((f) => old.get(f.shard) === Number(f.epoch));
  assert.deepEqual(
    stale.map((f) => `${f.resource}@${f.epoch} at ${f.started_at.toISOString()}`),
    [],
    'no action recorded under an epoch the paused agent held when it was stopped',
  );
  const rejoined = epochs.filter((e: Epoch) => e.holder === paused && e.acquired_at >= resumedAt);
  assert.ok(rejoined.length > 0, 'the resumed agent took shards again');
  for (const e of rejoined)
    assert.ok(Number(e.epoch) > (old.get(e.shard) ?? 0), `shard ${e.shard}: a new epoch`);
  const cutOff = await rows<{ n: string }>(
    "SELECT count(*) AS n FROM steward_fenced_actions WHERE holder = $1 AND outcome = 'failed'",
    [paused],
  );
  t.diagnostic(
    `paused holder: ${old.size} shards at the stop, ${afterStop.length} actions after it (all under new epochs), ` +
      `${Number(cutOff[0]!.n)} failed (aborted) outcomes; rejoined with ${rejoined.length} new epochs`,
  );
});
