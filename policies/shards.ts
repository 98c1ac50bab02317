/**
 * Shards of shared cloud resources (SPEC §11): which shard a resource is in,
 * and which live agent should hold each shard. Pure: no I/O, no clock.
 *
 * - `shardOf(key, count)`: a stable hash (FNV-1a, 32 bits) of the resource key
 *   modulo a FIXED count. Every agent, every version, computes the same shard
 *   for the same key; the count is pinned in the database (agent/fleet/leases.ts)
 *   so two agents configured differently can never split one resource two ways.
 * - `assignShards(count, agents)`: rendezvous (highest-random-weight) hashing
 *   with bounded loads. Each shard ranks the agents by hash(agent, shard); it
 *   goes to the first agent in its ranking still below its fair share, so every
 *   agent ends with ⌊count/n⌋ or ⌊count/n⌋ + 1 shards, and the assignment is
 *   stable: when an agent joins or leaves, mostly the shards whose ranking it
 *   changes (≈ count/n) move, plus a few that overflow the bounds.
 *
 * The target is only a target: an agent takes a shard only when its lease is
 * free or expired, so a disagreement between two agents' views of who is live
 * costs time, never safety (the lease decides, not this function).
 */

/** FNV-1a over the UTF-8 bytes of `s`, as an unsigned 32-bit integer. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A 32-bit finaliser (murmur3's fmix32): spreads FNV's low bits, which a plain modulo would keep. */
function mix(h: number): number {
  let x = h >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b) >>> 0;
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** The shard (0 … count−1) of a resource key. */
export function shardOf(key: string, count: number): number {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`shard count must be a positive integer`);
  return mix(fnv1a(key)) % count;
}

/** The agents in the order shard `shard` prefers them (highest weight first; ties by id). */
export function ranking(shard: number, agents: readonly string[]): string[] {
  const w = new Map(agents.map((a) => [a, mix(fnv1a(`${a}\u0000${shard}`))]));
  return [...new Set(agents)].sort((a, b) => w.get(b)! - w.get(a)! || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Which agent should hold each shard: `result[shard]` is an agent id, or null when
 * there are no agents. Deterministic in (count, the set of agents).
 */
export function assignShards(count: number, agents: readonly string[]): Array<string | null> {
  const live = [...new Set(agents)].sort();
  if (live.length === 0) return Array.from({ length: count }, () => null);
  // Loads end at ⌊count/n⌋ or one more (for count mod n agents): first every shard goes to the first agent
  // of its ranking below the floor; the rest, in shard order, to the first below floor + 1 while extras last.
  const floor = Math.floor(count / live.length);
  let extras = count % live.length;
  const load = new Map(live.map((a) => [a, 0]));
  const rank = Array.from({ length: count }, (_, s) => ranking(s, live));
  const out: Array<string | null> = new Array<string | null>(count).fill(null);
  for (let s = 0; s < count; s++) {
    const pick = rank[s]!.find((a) => load.get(a)! < floor);
    if (pick === undefined) continue;
    load.set(pick, load.get(pick)! + 1);
    out[s] = pick;
  }
  for (let s = 0; s < count; s++) {
    if (out[s] !== null) continue;
    const pick = rank[s]!.find((a) => load.get(a)! === floor && extras > 0)!;
    extras--;
    load.set(pick, floor + 1);
    out[s] = pick;
  }
  return out;
}

/** The shards `agent` should hold, ascending. */
export function targetShards(agent: string, count: number, agents: readonly string[]): number[] {
  const all = assignShards(count, agents.includes(agent) ? agents : [...agents, agent]);
  return all.flatMap((a, s) => (a === agent ? [s] : []));
}
