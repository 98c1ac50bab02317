import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AgentProgress,
  currentWaves,
  mayAct,
  planWaves,
  rolloutGate,
  rolloutOrder,
} from '../../policies/rollout.js';

const IDS = Array.from({ length: 10 }, (_, i) => `web-${String(i).padStart(2, '0')}`);
const REV = 'f'.repeat(40);
const BAKE = 120_000;
const NOW = 1_000_000;

const good = (since: number): AgentProgress => ({
  revision: REV,
  converged: true,
  stuck: false,
  healthy: true,
  failingChecks: [],
  goodSince: since,
  reporting: true,
});
const acting: AgentProgress = { ...good(0), converged: false, goodSince: null };

describe('rolloutOrder / planWaves', () => {
  it('orders by a hash of the id: stable, independent of input order and of the alphabet', () => {
    const order = rolloutOrder(IDS);
    assert.deepEqual(rolloutOrder([...IDS].reverse()), order);
    assert.notDeepEqual(order, IDS, 'not alphabetical');
    assert.deepEqual([...order].sort(), IDS);
  });

  it('cuts [1, "30%", "100%"] of 10 agents into 1, 2 and 7', () => {
    const waves = planWaves(IDS, [1, '30%', '100%']);
    assert.deepEqual(
      waves.map((w) => w.length),
      [1, 2, 7],
    );
    assert.deepEqual(waves.flat(), rolloutOrder(IDS));
  });

  it('rounds a percentage up, drops sizes that add nobody, and puts the rest last', () => {
    assert.deepEqual(
      planWaves(IDS.slice(0, 3), [1, '10%', '50%', '100%']).map((w) => w.length),
      [1, 1, 1],
    );
    assert.deepEqual(
      planWaves(IDS, ['50%']).map((w) => w.length),
      [5, 5],
    );
  });
});

describe('rolloutGate', () => {
  const waves = planWaves(IDS, [1, '30%', '100%']);
  const [w0, w1, w2] = waves as [string[], string[], string[]];
  const progress = (entries: Array<[string[], AgentProgress]>) =>
    new Map(entries.flatMap(([ids, p]) => ids.map((id) => [id, p] as const)));
  const gate = (p: Map<string, AgentProgress>, now = NOW) =>
    rolloutGate({ revision: REV, waves, progress: p, bakeMs: BAKE, now });

  it('opens only the first wave while it is acting', () => {
    const d = gate(progress([[w0, acting]]));
    assert.equal(d.open, 1);
    assert.equal(d.halt, null);
    assert.deepEqual(
      d.waves.map((w) => w.state),
      ['open', 'waiting', 'waiting'],
    );
    assert.equal(mayAct(w0[0]!, waves, d), true);
    assert.equal(mayAct(w1[0]!, waves, d), false);
  });

  it('keeps the next wave closed while the first bakes, opens it once baked', () => {
    const since = NOW - BAKE + 1;
    assert.equal(gate(progress([[w0, good(since)]])).waves[0]!.state, 'baking');
    assert.equal(gate(progress([[w0, good(since)]])).open, 1);
    const d = gate(progress([[w0, good(since)]]), NOW + 1);
    assert.equal(d.open, 2);
    assert.equal(mayAct(w1[0]!, waves, d), true);
    assert.equal(mayAct(w2[0]!, waves, d), false);
  });

  it('opens every wave in order as each converges and bakes', () => {
    const d = gate(
      progress([
        [w0, good(0)],
        [w1, good(NOW - BAKE)],
        [w2, acting],
      ]),
    );
    assert.equal(d.open, 3);
    assert.deepEqual(
      d.waves.map((w) => w.state),
      ['done', 'done', 'open'],
    );
  });

  it('an agent without a heartbeat, or on another revision, holds the next wave closed', () => {
    assert.equal(gate(new Map()).open, 1);
    assert.equal(gate(progress([[w0, { ...good(0), revision: 'old' }]])).open, 1);
  });

  it('a failing check in an open wave halts, naming the agent and the check; no wave may act', () => {
    const sick: AgentProgress = { ...good(0), healthy: false, failingChecks: ['web'], goodSince: null };
    const d = gate(progress([[w0, sick]]));
    assert.deepEqual(d.halt?.agents, w0);
    assert.deepEqual(d.halt?.checks, ['web']);
    assert.equal(d.waves[0]!.state, 'halted');
    assert.equal(mayAct(w0[0]!, waves, d), false);
  });

  it('a resource that does not converge in an open wave halts too; a sick agent of a waiting wave does not', () => {
    assert.deepEqual(gate(progress([[w0, { ...acting, stuck: true }]])).halt?.agents, w0);
    const sick: AgentProgress = { ...good(0), healthy: false, failingChecks: ['web'], goodSince: null };
    assert.equal(
      gate(
        progress([
          [w0, acting],
          [w2, sick],
        ]),
      ).halt,
      null,
    );
  });
});

describe('currentWaves (the plan pinned when the rollout started)', () => {
  const SIZES = [1, '30%', '100%'];
  const plan = planWaves(IDS, SIZES);

  it('without a pinned plan: planned over the alive agents', () => {
    assert.deepEqual(currentWaves(null, IDS, SIZES), plan);
  });

  it('an agent that joins goes to a wave after the plan, whatever its place in the order', () => {
    // Find a newcomer that the order would put first: re-planning would make it wave 0.
    const newcomer = Array.from({ length: 200 }, (_, i) => `new-${i}`).find(
      (id) => rolloutOrder([...IDS, id])[0] === id,
    )!;
    assert.equal(planWaves([...IDS, newcomer], SIZES)[0]![0], newcomer, 're-planning would move it first');
    assert.deepEqual(currentWaves(plan, [...IDS, newcomer], SIZES), [...plan, [newcomer]]);
    assert.deepEqual(currentWaves(plan, IDS, SIZES), plan, 'no joiner: the plan as it is');
  });

  it('many joiners roll out in waves of their own, cut by the same sizes', () => {
    // A fleet restarted as a push lands: the first agent up planned itself alone.
    const first = IDS[0]!;
    const waves = currentWaves([[first]], IDS, SIZES);
    assert.deepEqual(waves, [[first], ...planWaves(IDS.slice(1), SIZES)]);
    assert.deepEqual(
      waves.map((w) => w.length),
      [1, 1, 2, 6],
      'not the other nine at once',
    );
  });

  it('an agent that stopped reporting stays in its wave and, once its wave is open, halts the rollout', () => {
    const silent = plan[1]![0]!;
    const waves = currentWaves(
      plan,
      IDS.filter((id) => id !== silent),
      SIZES,
    );
    assert.deepEqual(waves, plan, 'nobody moves');
    const progress = new Map(IDS.map((id) => [id, good(NOW - 2 * BAKE)]));
    progress.set(silent, { ...good(NOW - 2 * BAKE), reporting: false });
    const d = rolloutGate({ revision: REV, waves, progress, bakeMs: BAKE, now: NOW });
    assert.deepEqual(d.halt?.agents, [silent], 'wave 1 is open: its silent agent halts it');
    assert.match(d.halt?.reason ?? '', /not reporting/);
    // Still waiting (wave 0 not done): the silent agent of wave 1 halts nothing yet.
    progress.set(plan[0]![0]!, acting);
    const early = rolloutGate({ revision: REV, waves, progress, bakeMs: BAKE, now: NOW });
    assert.equal(early.open, 1);
    assert.equal(early.halt, null);
  });

  it('an empty wave counts as done', () => {
    const waves = [[], ...plan.slice(1)];
    const d = rolloutGate({ revision: REV, waves, progress: new Map(), bakeMs: BAKE, now: NOW });
    assert.equal(d.open, 2, 'wave 1 opens: the empty wave 0 is done');
    assert.equal(d.waves[0]!.state, 'done');
    assert.equal(d.waves[0]!.bakeUntil, null);
  });
});
