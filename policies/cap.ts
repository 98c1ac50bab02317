/**
 * Per-cycle cap (SPEC §2.8): at most `maxActionsPerCycle` resources changed
 * per cycle.
 *
 * Protects against a large change — even an approved one — landing all at
 * once: it rolls out gradually, and a mistake is seen while it is still small.
 * The order is oldest drift first, ties broken by key, so the choice is
 * deterministic and no resource starves behind newer drift.
 */

export interface CapCandidate {
  key: string;
  /** When the drift was first seen (epoch ms). */
  firstSeen: number;
}

/**
 * Selects up to `cap` candidates, oldest `firstSeen` first, then by key
 * (code-unit order, locale-independent). Both lists come back in that order.
 * A cap of 0 (or less) selects nothing. The input is not modified.
 */
export function selectWithinCap<T extends CapCandidate>(
  candidates: readonly T[],
  cap: number,
): { selected: T[]; deferred: T[] } {
  const ordered = [...candidates].sort(oldestFirst);
  const limit = Math.max(0, Math.floor(cap));
  return { selected: ordered.slice(0, limit), deferred: ordered.slice(limit) };
}

function oldestFirst(a: CapCandidate, b: CapCandidate): number {
  if (a.firstSeen !== b.firstSeen) return a.firstSeen - b.firstSeen;
  if (a.key === b.key) return 0;
  return a.key < b.key ? -1 : 1;
}
