/**
 * Issue 14's must-show for rollout waves, with real parts only: ten `steward
 * run` processes (each its own file root), one local repository, one real
 * PostgreSQL, waves [1, "30%", "100%"], and per agent a real HTTP health check
 * (`health:` in its config) of the service it manages — a loopback server
 * that answers 500 while that agent's app.conf says "broken". A push that
 * breaks health reaches exactly the first wave's agent, the fleet freezes
 * within one cycle of the failed check and 0 files change on the nine others;
 * the fix then reaches all ten in wave order.
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { planWaves } from '../../policies/rollout.js';
import { killAllAgents } from '../helpers/agent-process.js';
import { createTestRepo, type TestRepo } from '../helpers/git-repo.js';
import { cycleAll, type Fleet, type FleetAgent, startFleet, waitFor } from '../helpers/fleet.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';

const N = 10;
const WAVES: Array<number | string> = [1, '30%', '100%'];

let pgServer: PgServer;
let fleet: Fleet;
let base: string;
let repo: TestRepo;
let service: Server;

const app = (content: string) =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: app }\nspec: { path: app.conf, content: "${content}\\n" }\n`;

async function push(content: string): Promise<void> {
  await repo.write('fleet/app.yaml', app(content));
  await repo.commit(content);
}

const contentOf = async (a: FleetAgent) =>
  (await readFile(join(a.root, 'app.conf'), 'utf8').catch(() => '')).trim();
const contents = () => Promise.all(fleet.agents.map(contentOf));

interface Status {
  freeze: { frozen: boolean; reason: string | null };
  health: { ok: boolean };
}
const status = async (a: FleetAgent) => (await a.req<Status>('GET', '/v1/status')).json;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'steward-rollout-e2e-'));
  pgServer = await startPostgres();
  repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  await repo.write('fleet/app.yaml', app('v1'));
  await repo.commit('v1');
  // Each agent's service: healthy unless the app.conf that agent manages says "broken".
  service = createServer((req, res) => {
    const id = /^\/health\/([\w-]+)$/.exec(req.url ?? '')?.[1];
    const agent = fleet?.agents.find((a) => a.id === id);
    if (!agent) return res.writeHead(404).end();
    void contentOf(agent).then((c) => res.writeHead(c === 'broken' ? 500 : 200).end());
  });
  await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
  const port = (service.address() as AddressInfo).port;
  fleet = await startFleet({
    n: N,
    pgUrl: pgServer.url,
    repo: repo.workDir,
    guardrails: ['rateLimit: { actionsPerMinute: 60000, burst: 1000 }'],
    extra: `fleet: { rollout: { waves: ${JSON.stringify(WAVES)}, bake: 1ms } }`,
    extraFor: (id) =>
      `health:\n  - { name: app-http, interval: 100ms, http: { url: "http://127.0.0.1:${port}/health/${id}", timeout: 2s } }`,
  });
  await Promise.all(fleet.agents.map((a) => waitFor(async () => (await a.cycles()) >= 1, `${a.id} started`)));
});

after(async () => {
  killAllAgents();
  await fleet?.stop();
  await new Promise<void>((r) => (service ? service.close(() => r()) : r()));
  await pgServer?.destroy();
  await rm(base, { recursive: true, force: true });
});

/** Rounds of one cycle on every agent until `done`; returns the agents whose app.conf changed in each round. */
async function roundsUntil(done: (c: string[]) => boolean, max: number): Promise<string[][]> {
  const changed: string[][] = [];
  let before = await contents();
  for (let i = 0; i < max && !done(before); i++) {
    await cycleAll(fleet.agents);
    const now = await contents();
    changed.push(fleet.agents.filter((_, j) => now[j] !== before[j]).map((a) => a.id));
    before = now;
  }
  return changed;
}

test('a push that breaks health reaches exactly the first wave; the fleet freezes; the fix reaches all ten in wave order', async () => {
  const ids = fleet.agents.map((a) => a.id);
  const waves = planWaves(ids, WAVES);
  assert.deepEqual(
    waves.map((w) => w.length),
    [1, 2, 7],
  );
  // v1 is rolled out in waves too, and its plan is pinned by the first agent to ask — while the others
  // are still starting, so most of them join after it in waves of their own: more rounds than three waves.
  await roundsUntil((c) => c.every((x) => x === 'v1'), 30);
  assert.deepEqual(await contents(), Array(N).fill('v1'), 'v1 everywhere first');

  await push('broken');
  await cycleAll(fleet.agents);
  const first = fleet.agents.find((a) => a.id === waves[0]![0])!;
  assert.equal(await contentOf(first), 'broken', 'the first wave acted');
  // Its real HTTP check sees the broken service (polled, not slept).
  await waitFor(async () => (await status(first)).health.ok === false, 'the failing health check');
  // …and has reported it in its heartbeat (at once, on the transition): what the others' gates read.
  await waitFor(
    async () =>
      (
        await pgServer.query<{ ok: boolean }>(
          "SELECT (health->>'ok')::boolean AS ok FROM agents WHERE id = $1",
          [first.id],
        )
      )[0]?.ok === false,
    'the failing check in the heartbeat',
  );
  await cycleAll(fleet.agents); // within one cycle of the failed check: the fleet's freeze is set
  const [row] = await pgServer.query<{ reason: string | null }>(
    "SELECT freeze_json->>'reason' AS reason FROM fleet_control",
  );
  assert.match(row?.reason ?? '', new RegExp(`^rollout_halted: .*${first.id}.*app-http`));
  await cycleAll(fleet.agents); // and every agent has read it
  for (const a of fleet.agents) {
    const s = await status(a);
    assert.equal(s.freeze.frozen, true, `${a.id} frozen`);
    assert.match(s.freeze.reason ?? '', /^rollout_halted: .*app-http/);
  }
  const after = await contents();
  assert.deepEqual(
    fleet.agents.filter((a, i) => a !== first && after[i] !== 'v1').map((a) => a.id),
    [],
    '0 files changed on the nine others',
  );

  await push('v3');
  const un = await fleet.agents[N - 1]!.req('POST', '/v1/unfreeze', {});
  assert.equal(un.status, 200);
  const changed = await roundsUntil((c) => c.every((x) => x === 'v3'), 30);
  assert.deepEqual(await contents(), Array(N).fill('v3'), 'the fix reached all ten');
  // Each agent changed exactly once, and every agent of a wave only after every agent of the wave before
  // (the rounds are not in step with the heartbeats, so one wave may take more than one round).
  const roundOf = new Map(changed.flatMap((r, i) => r.map((id) => [id, i] as const)));
  assert.equal(changed.flat().length, N, `each agent changed once: ${JSON.stringify(changed)}`);
  for (let k = 1; k < waves.length; k++) {
    const lastOfPrevious = Math.max(...waves[k - 1]!.map((id) => roundOf.get(id)!));
    const firstOfThis = Math.min(...waves[k]!.map((id) => roundOf.get(id)!));
    assert.ok(
      firstOfThis > lastOfPrevious,
      `wave ${k} ${JSON.stringify(waves[k])} after wave ${k - 1}: rounds ${JSON.stringify(changed)}`,
    );
  }
});
