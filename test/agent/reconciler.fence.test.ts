/**
 * The fence step of the loop, in a real daemon (startDaemon, cycles driven by
 * hand) against a real PostgreSQL and a real moto_server: the agent acts on
 * the shards it holds with fenced intents carrying their epoch, shows them in
 * /v1/status and steward_shards_held; with PostgreSQL gone it acts on nothing,
 * keeps detecting and raises one state_unwritable; it recovers when it returns.
 */
import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../agent/config.js';
import { startDaemon } from '../../agent/daemon.js';
import type { AgentEvent } from '../../agent/events.js';
import { silentLogger } from '../../agent/log.js';
import { until } from '../helpers/agent-process.js';
import { createTestRepo } from '../helpers/git-repo.js';
import { ec2World, startMoto } from '../helpers/moto.js';
import { startPostgres } from '../helpers/postgres.js';

test('fenced actions under the held epochs; PostgreSQL lost: 0 actions, drift still detected, one alert, then recovery', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-fence-'));
  const moto = await startMoto();
  const db = await startPostgres();
  t.after(async () => {
    await db.destroy();
    await moto.stop();
    await rm(base, { recursive: true, force: true });
  });
  const world = await ec2World(moto);
  const ids = await world.run(4, { tags: { Env: 'dev' } });
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  await repo.write(
    'fleet/ec2.yaml',
    ids
      .map(
        (id, i) =>
          `apiVersion: steward/v1\nkind: Ec2Instance\nmetadata: { name: i${i} }\nspec:\n  selector: { instanceId: ${id} }\n  tags: { Env: prod }\n`,
      )
      .join('---\n'),
  );
  await repo.commit('4 instances');
  const config = join(base, 'steward.yaml');
  await writeFile(
    config,
    [
      'agent: { id: solo }',
      `source: { url: ${JSON.stringify(repo.workDir)}, path: fleet, interval: 1h }`,
      `providers: { aws-ec2: { region: ${world.region}, endpoint: "${moto.url}" } }`,
      // Cycles are driven by hand; nothing held by soak, mass drift or a long backoff.
      'reconcile: { interval: 1h, mode: enforce }',
      'guardrails: { soak: { observeCycles: 0 }, massDrift: { maxDrifted: 1000, maxDriftedPercent: 100 }, backoff: { base: 1s, max: 1s, jitter: 0 } }',
      'admin: { listen: "127.0.0.1:0" }',
      `state: { dir: state, postgres: { url: ${JSON.stringify(db.url)}, connectTimeout: 1s } }`,
      'fleet: { shards: { count: 4, leaseTtl: 3s } }',
    ].join('\n'),
  );
  const clock = { now: Date.UTC(2026, 0, 1) };
  const daemon = await startDaemon(await loadConfig(config), {
    log: silentLogger,
    manual: true,
    clock: () => clock.now,
  });
  t.after(() => daemon.stop());
  const events: AgentEvent[] = [];
  daemon.agent.onEvent((e) => events.push(e));
  const cycle = async () => {
    clock.now += 60_000; // past the EC2 settle window of the last apply
    await daemon.agent.refresh(true);
    return daemon.agent.lastCycle!;
  };
  const envs = async () =>
    (await world.describe(ids)).map((i) => i.Tags?.find((x) => x.Key === 'Env')?.Value);

  // Alone, it holds every shard and acts on all four, each intent fenced under the shard's epoch.
  const status = daemon.agent.shards!;
  assert.deepEqual(status.held, [0, 1, 2, 3]);
  const first = await cycle();
  assert.equal(first.applied, 4);
  assert.deepEqual(await envs(), ['prod', 'prod', 'prod', 'prod']);
  const fenced = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM steward_fenced_actions a JOIN steward_shard_leases l USING (shard, epoch, holder)
      WHERE a.outcome = 'applied' AND a.in_lease`,
  );
  assert.equal(Number(fenced[0]!.n), 4);
  const token = (await readFile(join(base, 'state', 'admin-token'), 'utf8')).trim();
  const res = await fetch(`${daemon.admin.url}/v1/status`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { shards: { held: number[]; epochs: Record<string, number> } };
  assert.deepEqual(body.shards.held, [0, 1, 2, 3]);
  assert.deepEqual(Object.keys(body.shards.epochs).sort(), ['0', '1', '2', '3']);
  const metrics = await daemon.metrics.registry.getSingleMetricAsString('steward_shards_held');
  assert.match(metrics, /^steward_shards_held 4$/m);

  // Someone else's change, then PostgreSQL goes away: detected, not acted on, reported once.
  await world.client.send(new CreateTagsCommand({ Resources: ids, Tags: [{ Key: 'Env', Value: 'dev' }] }));
  await db.kill();
  // (The first cycle after a revert that did not stick holds it in backoff: no action either way.)
  const held = await cycle();
  assert.equal(held.applied + held.failed, 0);
  // The renew loop notices within a third of the TTL: every shard is dropped.
  await until(async () => daemon.agent.shards!.error !== null, 'the lease database reported lost', 30_000);
  assert.deepEqual(daemon.agent.shards!.held, []);
  const down1 = await cycle();
  const down2 = await cycle();
  for (const r of [down1, down2]) {
    assert.equal(r.drifted, 4, 'detection goes on');
    assert.equal(r.applied + r.failed, 0, 'no action');
    assert.ok(r.stateError !== null);
    assert.deepEqual(r.held, { 'state-unwritable': 4 });
  }
  assert.deepEqual(await envs(), ['dev', 'dev', 'dev', 'dev']);
  assert.equal(events.filter((e) => e.type === 'state_unwritable').length, 1, 'one alert');
  assert.equal(daemon.agent.stateWritable, false);

  // It comes back: the shards are taken again (after the old leases expired), the drift is reverted.
  await db.start();
  await until(async () => daemon.agent.shards!.held.length === 4, 'the shards held again', 30_000);
  const back = await cycle();
  assert.equal(back.applied, 4);
  assert.equal(back.stateError, null);
  assert.deepEqual(await envs(), ['prod', 'prod', 'prod', 'prod']);
  assert.ok(events.some((e) => e.type === 'state_recovered'));
});
