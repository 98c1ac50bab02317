/**
 * Rollout waves (SPEC §11) with four real daemons (in process, driven cycle by
 * cycle) on one PostgreSQL and one repository, waves [1, "50%", "100%"]. Each
 * agent's health check reads the service's config it manages: a push that
 * breaks it reaches exactly the first wave's agent, the fleet freezes
 * (`rollout_halted`, naming the agent and the check) within one cycle of the
 * failed check, and nothing changes on the others; after the fix is pushed and
 * the fleet unfrozen, the fix reaches every agent in wave order.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../agent/config.js';
import { type Daemon, startDaemon } from '../../agent/daemon.js';
import type { FleetView } from '../../agent/fleet/types.js';
import type { HealthReport, HealthSource } from '../../agent/health/types.js';
import { silentLogger } from '../../agent/log.js';
import { planWaves } from '../../policies/rollout.js';
import { agentDir, waitFor } from '../helpers/fleet.js';
import { createTestRepo, type TestRepo } from '../helpers/git-repo.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';

const IDS = ['web-1', 'web-2', 'web-3', 'web-4'];
const WAVES = planWaves(IDS, [1, '50%', '100%']);

let pgServer: PgServer;
let base: string;
let repo: TestRepo;
const daemons = new Map<string, Daemon>();
const roots = new Map<string, string>();

const manifest = (content: string) =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: app }\nspec: { path: app.conf, content: "${content}\\n" }\n`;

/** The check an operator would write: the service's config must not say "broken". */
function healthOf(root: string): HealthSource {
  const latest = (): HealthReport => {
    let text = '';
    try {
      text = readFileSync(join(root, 'app.conf'), 'utf8');
    } catch {}
    const ok = !text.includes('broken');
    return {
      ok,
      at: Date.now(),
      checks: [
        {
          name: 'app-http',
          kind: 'http',
          ok,
          detail: ok ? 'HTTP 200' : 'HTTP 500',
          at: Date.now(),
          durationMs: 1,
        },
      ],
    };
  };
  return { latest, check: async () => latest() };
}

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'steward-rollout-'));
  pgServer = await startPostgres();
  repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  await repo.write('fleet/app.yaml', manifest('v1'));
  await repo.commit('v1');
  for (const id of IDS) {
    const { root, config: file } = await agentDir(join(base, id), {
      repo: repo.workDir,
      pgUrl: pgServer.url,
      admin: '{ listen: "127.0.0.1:0" }',
      agent: `{ id: ${id} }`,
      extra: 'fleet: { rollout: { waves: [1, "50%", "100%"], bake: 1ms } }',
    });
    await writeFile(join(root, 'app.conf'), 'v1\n'); // converged on v1 already
    roots.set(id, root);
    const d = await startDaemon(await loadConfig(file), {
      log: silentLogger,
      manual: true,
      health: healthOf(root),
    });
    daemons.set(id, d);
  }
});

after(async () => {
  for (const d of daemons.values()) await d.stop();
  await pgServer?.destroy();
  await rm(base, { recursive: true, force: true });
});

const content = (id: string) => readFileSync(join(roots.get(id)!, 'app.conf'), 'utf8').trim();

/** One cycle on every agent (in id order), then wait until each one's heartbeat of that cycle is in. */
async function round(): Promise<Map<string, number>> {
  const applied = new Map<string, number>();
  for (const id of IDS) {
    const a = daemons.get(id)!.agent;
    await a.poll();
    await a.trigger('test');
    applied.set(id, a.lastCycle!.applied);
  }
  await waitFor(async () => {
    const rows = await pgServer.query<{ id: string; last: Date | null }>(
      'SELECT id, last_cycle_at AS last FROM agents',
    );
    return IDS.every((id) => {
      const at = daemons.get(id)!.agent.lastCycle!.startedAt;
      return rows.some((r) => r.id === id && r.last?.toISOString() === at);
    });
  }, 'the heartbeats of the round');
  return applied;
}

/** GET /v1/fleet through one agent's admin API. */
async function fleetView(id: string): Promise<FleetView> {
  const d = daemons.get(id)!;
  const token = readFileSync(join(base, id, 'state', 'admin-token'), 'utf8').trim();
  const res = await fetch(`${d.admin.url}/v1/fleet`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  return (await res.json()) as FleetView;
}

const freezeRow = async () =>
  (
    await pgServer.query<{ reason: string | null }>(
      "SELECT freeze_json->>'reason' AS reason FROM fleet_control",
    )
  )[0]!.reason;

test('a push that breaks health reaches only the first wave and freezes the fleet; the fix rolls out in wave order', async () => {
  await round(); // every agent registered and converged on v1
  const [first, second, third] = WAVES as [string[], string[], string[]];
  assert.deepEqual(
    WAVES.map((w) => w.length),
    [1, 1, 2],
  );

  await repo.write('fleet/app.yaml', manifest('broken'));
  await repo.commit('broken');
  const r1 = await round();
  assert.deepEqual(
    IDS.filter((id) => r1.get(id)! > 0),
    first,
    'only the first wave acted',
  );
  for (const id of [...second, ...third]) {
    assert.equal(content(id), 'v1');
    // Held for its wave — or frozen already, when the first wave's failed check arrived before its cycle.
    const held = daemons.get(id)!.agent.lastCycle!.held;
    assert.equal((held.wave ?? 0) + (held.frozen ?? 0), 1, `${id} held: ${JSON.stringify(held)}`);
  }
  assert.equal(content(first[0]!), 'broken');

  const r2 = await round(); // the failed check is in the first wave's heartbeat now
  assert.deepEqual([...r2.values()], [0, 0, 0, 0]);
  const reason = await freezeRow();
  assert.match(reason ?? '', /^rollout_halted: /);
  assert.match(reason!, new RegExp(`agents ${first[0]}`));
  assert.match(reason!, /failing checks app-http/);
  for (const id of [...second, ...third]) assert.equal(content(id), 'v1', `${id} changed`);
  const view = await fleetView(second[0]!);
  assert.deepEqual(
    view.rollout?.waves.map((w) => w.agents),
    WAVES,
  );
  assert.deepEqual(view.rollout?.halted?.agents, first);
  assert.deepEqual(view.rollout?.halted?.checks, ['app-http']);
  const sick = view.agents.find((a) => a.id === first[0]);
  assert.equal(sick?.wave, 0);
  assert.equal(sick?.healthy, false);

  // The fix, then the operator lifts the freeze: it rolls out wave by wave.
  await repo.write('fleet/app.yaml', manifest('v3'));
  await repo.commit('v3');
  await daemons.get(third[0]!)!.agent.unfreeze('admin-api', null);
  const order: string[][] = [];
  for (let i = 0; i < 6 && IDS.some((id) => content(id) !== 'v3'); i++) {
    const r = await round();
    order.push(IDS.filter((id) => r.get(id)! > 0));
  }
  assert.deepEqual(
    order.filter((ids) => ids.length > 0).map((ids) => ids.sort()),
    [first, second, [...third].sort()],
    'one wave per round, in order',
  );
  for (const id of IDS) assert.equal(content(id), 'v3');
  assert.equal(await freezeRow(), null);
});
