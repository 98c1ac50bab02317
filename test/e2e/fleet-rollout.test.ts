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
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { HealthReport, HealthSource } from '../../agent/health/types.js';
import { planWaves } from '../../policies/rollout.js';
import { type DaemonFleet, startDaemonFleet } from '../helpers/daemon-fleet.js';

const IDS = ['web-1', 'web-2', 'web-3', 'web-4'];
const WAVES = planWaves(IDS, [1, '50%', '100%']);

let f: DaemonFleet;

/** The check an operator would write: the service's config must not say "broken". */
function healthOf(root: string): HealthSource {
  const latest = (): HealthReport => {
    let text = '';
    try {
      text = readFileSync(join(root, 'app.conf'), 'utf8');
    } catch {}
    const ok = !text.includes('broken');
    const at = Date.now();
    return {
      ok,
      at,
      checks: [
        { name: 'app-http', kind: 'http', ok, detail: ok ? 'HTTP 200' : 'HTTP 500', at, durationMs: 1 },
      ],
    };
  };
  return { latest, check: async () => latest() };
}

before(async () => {
  f = await startDaemonFleet({
    ids: IDS,
    extra: 'fleet: { rollout: { waves: [1, "50%", "100%"], bake: 1ms } }',
    health: healthOf,
  });
});
after(() => f?.stop());

test('a push that breaks health reaches only the first wave and freezes the fleet; the fix rolls out in wave order', async () => {
  await f.round(); // every agent registered and converged on v1
  const [first, second, third] = WAVES as [string[], string[], string[]];
  assert.deepEqual(
    WAVES.map((w) => w.length),
    [1, 1, 2],
  );

  await f.push('broken');
  const r1 = await f.round();
  assert.deepEqual(
    IDS.filter((id) => r1.get(id)! > 0),
    first,
    'only the first wave acted',
  );
  for (const id of [...second, ...third]) {
    assert.equal(f.content(id), 'v1');
    // Held for its wave — or frozen already, when the first wave's failed check arrived before its cycle.
    const held = f.daemons.get(id)!.agent.lastCycle!.held;
    assert.equal((held.wave ?? 0) + (held.frozen ?? 0), 1, `${id} held: ${JSON.stringify(held)}`);
  }
  assert.equal(f.content(first[0]!), 'broken');

  const r2 = await f.round(); // the failed check is in the first wave's heartbeat now
  assert.deepEqual([...r2.values()], [0, 0, 0, 0]);
  const reason = await f.freezeReason();
  assert.match(reason ?? '', /^rollout_halted: /);
  assert.match(reason!, new RegExp(`agents ${first[0]}`));
  assert.match(reason!, /failing checks app-http/);
  for (const id of [...second, ...third]) assert.equal(f.content(id), 'v1', `${id} changed`);
  const view = await f.fleetView(second[0]!);
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
  await f.push('v3');
  await f.daemons.get(third[0]!)!.agent.unfreeze('admin-api', null);
  const order: string[][] = [];
  for (let i = 0; i < 6 && IDS.some((id) => f.content(id) !== 'v3'); i++) {
    const r = await f.round();
    order.push(IDS.filter((id) => r.get(id)! > 0));
  }
  assert.deepEqual(
    order.filter((ids) => ids.length > 0).map((ids) => ids.sort()),
    [first, second, [...third].sort()],
    'one wave per round, in order',
  );
  for (const id of IDS) assert.equal(f.content(id), 'v3');
  assert.equal(await f.freezeReason(), null);
});
