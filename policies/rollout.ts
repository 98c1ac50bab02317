/**
 * Rollout waves (SPEC §11 `fleet.rollout`), as pure decisions.
 *
 * A new revision reaches the agents wave by wave. The agents that read the
 * source are put in a stable order (by a hash of their id, so neither the
 * alphabet nor the order they registered in decides who goes first), cut
 * into waves by cumulative sizes (`[1, "30%", "100%"]`: the first agent, then
 * up to 30 % of them, then all). Wave 0 is open at once; wave k opens when
 * every agent of the waves before it is on the revision, converged and
 * healthy, and has stayed so for `bake`. A failing health check or a resource
 * that does not converge in an open wave halts the rollout, naming the
 * agents and the checks: the caller freezes the fleet (`rollout_halted`).
 *
 * This module is the decision; agent/fleet/rollout-gate.ts reads the
 * heartbeats for it and writes the halt (see docs/fleet.md).
 */
import { nodeCrypto } from '../core/builtins.js';

/** A cumulative wave size as written: a count of agents, or `"N%"` of them. */
export type WaveSize = number | string;

/** The rollout order: by the SHA-256 of each id (ties, which need a collision, by id). */
export function rolloutOrder(ids: readonly string[]): string[] {
  const key = (id: string) => nodeCrypto().createHash('sha256').update(id).digest('hex');
  return [...new Set(ids)]
    .map((id) => ({ id, k: key(id) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : a.id < b.id ? -1 : 1))
    .map((x) => x.id);
}

/** How many agents the cumulative size covers, out of `n` (a percentage rounds up, so 1 % of 10 is 1 agent). */
function covered(size: WaveSize, n: number): number {
  const count = typeof size === 'number' ? size : Math.ceil((Number.parseFloat(size) / 100) * n - 1e-9);
  return Math.min(n, Math.max(0, Math.floor(count)));
}

/** The agents of each wave, in rollout order; a size that adds nobody makes no (empty) wave. */
export function planWaves(ids: readonly string[], sizes: readonly WaveSize[]): string[][] {
  const order = rolloutOrder(ids);
  const waves: string[][] = [];
  let done = 0;
  for (const s of sizes) {
    const end = covered(s, order.length);
    if (end <= done) continue;
    waves.push(order.slice(done, end));
    done = end;
  }
  if (done < order.length) waves.push(order.slice(done)); // sizes not ending at 100 %: the rest go last
  return waves;
}

/**
 * The waves of a rollout in progress: the plan pinned when it started (`plan`; null: not pinned yet,
 * planned now over `reporting`), and after it the agents that started reporting since, in waves of their
 * own (the same sizes, in rollout order): a join never moves anyone to an earlier wave, and a joiner never
 * lands in a wave that is open already. A planned agent stays in its wave whether or not it still reports (the gate
 * decides what its silence means).
 */
export function currentWaves(
  plan: readonly (readonly string[])[] | null,
  reporting: readonly string[],
  sizes: readonly WaveSize[],
): string[][] {
  if (plan === null || plan.length === 0) return planWaves(reporting, sizes);
  const planned = new Set(plan.flat());
  // The joiners roll out in waves of their own, cut by the same sizes (a fleet restarted as a push lands
  // can leave its first agent planned alone: the rest must not then take the change all at once).
  const joined = reporting.filter((id) => !planned.has(id));
  return [...plan.map((w) => [...w]), ...planWaves(joined, sizes)];
}

/** What the gate needs to know of one agent (from its heartbeat). */
export interface AgentProgress {
  /** The revision it acts on. */
  revision: string | null;
  /** No drift left that it would revert. */
  converged: boolean;
  /** A resource it acted on did not converge (non-convergence alert open). */
  stuck: boolean;
  healthy: boolean;
  /** The checks that fail (names). */
  failingChecks: readonly string[];
  /** Since when it has been converged and healthy on `revision` (ms), null while it is not. */
  goodSince: number | null;
  /** Its heartbeat is recent (against the fleet's newest): false for a dead, hung or cut-off agent. */
  reporting: boolean;
}

export type WaveState = 'waiting' | 'open' | 'baking' | 'done' | 'halted';

export interface RolloutDecision {
  /** Waves 0 … open-1 may act on the revision. */
  open: number;
  waves: Array<{ index: number; agents: string[]; state: WaveState; bakeUntil: number | null }>;
  /** Set when an agent of an open wave fails a check, does not converge or stopped reporting: freeze the fleet. */
  halt: { reason: string; agents: string[]; checks: string[] } | null;
}

/**
 * The gate for `revision` at `now`. An agent without a heartbeat row (absent
 * from `progress`) holds the next wave closed (it might be acting), never
 * halts it. An agent of an open wave that stopped reporting halts it: it may
 * have died of the change, and only an operator (an unfreeze) can say it did
 * not.
 */
export function rolloutGate(input: {
  revision: string;
  waves: readonly string[][];
  progress: ReadonlyMap<string, AgentProgress>;
  bakeMs: number;
  now: number;
}): RolloutDecision {
  const { revision, waves, progress, bakeMs, now } = input;
  const on = (id: string) => {
    const p = progress.get(id);
    return p && p.revision === revision ? p : undefined;
  };
  // Which waves are open: 0 always; each next one once the one before is done (converged, healthy, baked).
  let open = waves.length > 0 ? 1 : 0;
  const bakeUntil: Array<number | null> = waves.map(() => null);
  for (let k = 0; k < waves.length; k++) {
    const wave = waves[k]!;
    const since = wave.map((id) => on(id)?.goodSince ?? null);
    const allGood = since.every((s) => s !== null);
    bakeUntil[k] = allGood && wave.length > 0 ? Math.max(...(since as number[])) + bakeMs : null;
    const passed = wave.length === 0 || (allGood && bakeUntil[k]! <= now); // an empty wave is done
    if (k + 1 === open && passed && k + 1 < waves.length) open = k + 2;
  }
  // Halting: in an open wave, an agent that stopped reporting (whatever revision it last reported), or
  // one on the revision that fails a check or has a resource that does not converge.
  const bad = waves
    .slice(0, open)
    .flat()
    .filter((id) => {
      const p = progress.get(id);
      if (p === undefined) return false;
      return !p.reporting || (p.revision === revision && (!p.healthy || p.stuck));
    });
  const halt =
    bad.length === 0
      ? null
      : {
          reason: `rollout of ${revision.slice(0, 12)} halted: ${bad.length} agent(s) failing health checks, not converging or not reporting`,
          agents: bad,
          checks: [...new Set(bad.flatMap((id) => progress.get(id)!.failingChecks))].sort(),
        };
  return {
    open,
    halt,
    waves: waves.map((agents, index) => {
      const state: WaveState =
        index >= open
          ? 'waiting'
          : agents.length === 0
            ? 'done'
            : halt && agents.some((id) => halt.agents.includes(id))
              ? 'halted'
              : bakeUntil[index] === null
                ? 'open'
                : bakeUntil[index]! > now
                  ? 'baking'
                  : 'done';
      return { index, agents: [...agents], state, bakeUntil: bakeUntil[index] ?? null };
    }),
  };
}

/** Whether agent `id` may act on the revision the decision is about. */
export function mayAct(id: string, waves: readonly string[][], decision: RolloutDecision): boolean {
  const k = waves.findIndex((w) => w.includes(id));
  return k >= 0 && k < decision.open && decision.halt === null;
}
