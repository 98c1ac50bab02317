/**
 * Strict mode's walk: the commits that must verify between the last verified
 * revision and a new tip — `git rev-list <last>..<tip>`: every ancestor of the
 * tip (the tip included) that is not an ancestor of the last verified commit
 * (which is excluded), side branches of merges included.
 *
 * Pure over an injected `readCommit`, so it works with either git engine. The
 * walk goes newest first by committer time on both sides (the way git paints
 * "uninteresting" commits) and stops when only ancestors of the last verified
 * commit are left to visit. Committer times only steer the walk: a skewed time
 * can make a commit be required that did not need to be (a false rejection),
 * never leave out one that is not an ancestor of the last verified commit.
 */

export interface ChainCommit {
  parents: readonly string[];
  /** Committer time (any monotonic unit, e.g. seconds). */
  time: number;
}

/** Reads a commit's parents and time; null when the object is not available (e.g. beyond a shallow boundary). */
export type ReadChainCommit = (oid: string) => Promise<ChainCommit | null>;

export type ChainResult =
  /** Oldest first, parents before children; empty when tip === last. */
  | { ok: true; commits: string[] }
  /** The last verified commit is not an ancestor of the tip (force-push or rewrite). `commits`: the tip's new history walked, oldest first. */
  | { ok: false; reason: 'not-ancestor'; commits: string[]; message: string }
  /** More than `limit` commits would have to be read. */
  | { ok: false; reason: 'too-many'; limit: number; message: string }
  /** A commit the walk needs is not available: deepen the history (to at least `oid`) and call again. */
  | { ok: false; reason: 'missing'; oid: string; message: string };

export const DEFAULT_CHAIN_LIMIT = 10_000;

const short = (oid: string): string => oid.slice(0, 12);

/** Commits in `last..tip`; see the module comment. `limit` bounds how many commits are read. */
export async function commitsSince(
  tip: string,
  last: string,
  readCommit: ReadChainCommit,
  limit: number = DEFAULT_CHAIN_LIMIT,
): Promise<ChainResult> {
  if (tip === last) return { ok: true, commits: [] };
  const info = new Map<string, ChainCommit>();
  const uninteresting = new Set<string>([last]);
  const seen = new Set<string>();
  // Queue of commits to visit, newest first. A plain array kept sorted: the
  // frontier of a GitOps history is small.
  const queue: Array<{ oid: string; time: number }> = [];
  const processed = new Set<string>();
  let reachedLast = false;
  let reads = 0;

  /** Marks `oid` and, through commits already visited, its ancestors as ancestors of `last`. */
  const paint = (oid: string): void => {
    const stack = [oid];
    while (stack.length > 0) {
      const o = stack.pop()!;
      if (uninteresting.has(o)) continue;
      uninteresting.add(o);
      if (processed.has(o)) stack.push(...info.get(o)!.parents);
    }
  };

  const load = async (oid: string): Promise<ChainCommit | null | 'limit'> => {
    const known = info.get(oid);
    if (known) return known;
    if (++reads > limit) return 'limit';
    const c = await readCommit(oid);
    if (c) info.set(oid, c);
    return c;
  };
  const push = (oid: string, time: number): void => {
    if (seen.has(oid)) return;
    seen.add(oid);
    let i = queue.length;
    while (i > 0 && queue[i - 1]!.time < time) i--;
    queue.splice(i, 0, { oid, time });
  };
  const tooMany = (): ChainResult => ({
    ok: false,
    reason: 'too-many',
    limit,
    message: `more than ${limit} commits to check between ${short(last)} and ${short(tip)}; verify a newer revision by hand or raise the limit`,
  });

  for (const start of [tip, last]) {
    const c = await load(start);
    if (c === 'limit') return tooMany();
    if (!c) {
      if (start === tip)
        return {
          ok: false,
          reason: 'missing',
          oid: tip,
          message: `commit ${short(tip)} is not available; fetch it`,
        };
      continue; // the last verified commit is gone from the object store: the tip's walk decides
    }
    push(start, c.time);
  }

  while (queue.some((q) => !uninteresting.has(q.oid))) {
    const { oid } = queue.shift()!;
    processed.add(oid);
    const c = info.get(oid)!;
    const bad = uninteresting.has(oid);
    for (const p of c.parents) {
      if (p === last && !bad) reachedLast = true;
      if (bad) paint(p);
      if (seen.has(p)) continue;
      const pc = await load(p);
      if (pc === 'limit') return tooMany();
      if (!pc) {
        if (bad) continue; // beyond the shallow edge of the old history: nothing more to subtract
        return {
          ok: false,
          reason: 'missing',
          oid: p,
          message: `commit ${short(p)} (a parent of ${short(oid)}) is not available; deepen the history and check again`,
        };
      }
      push(p, pc.time);
    }
  }

  // Required: everything reached from the tip and not painted uninteresting.
  const required = [...seen].filter((o) => !uninteresting.has(o) && info.has(o));
  const commits = topoOldestFirst(required, info);
  if (!reachedLast)
    return {
      ok: false,
      reason: 'not-ancestor',
      commits,
      message: `the last verified commit ${short(last)} is not in the history of ${short(tip)} (force-push or rewrite)`,
    };
  return { ok: true, commits };
}

/** Parents before children; ties by time then oid, so the order is deterministic. */
function topoOldestFirst(oids: string[], info: ReadonlyMap<string, ChainCommit>): string[] {
  const set = new Set(oids);
  const pending = new Map<string, number>();
  const children = new Map<string, string[]>();
  for (const o of oids) {
    const ps = info.get(o)!.parents.filter((p) => set.has(p));
    pending.set(o, ps.length);
    for (const p of ps) children.set(p, [...(children.get(p) ?? []), o]);
  }
  const order = (a: string, b: string): number => info.get(a)!.time - info.get(b)!.time || (a < b ? -1 : 1);
  const ready = oids.filter((o) => pending.get(o) === 0).sort(order);
  const out: string[] = [];
  while (ready.length > 0) {
    const o = ready.shift()!;
    out.push(o);
    for (const ch of children.get(o) ?? []) {
      const n = pending.get(ch)! - 1;
      pending.set(ch, n);
      if (n === 0) {
        ready.push(ch);
        ready.sort(order);
      }
    }
  }
  return out;
}
