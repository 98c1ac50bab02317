/** Did-you-mean: the closest known word to a misspelt one. Small and dependency-free, so the CLI can use it without loading the schema tooling. */

/** The closest candidate by edit distance (or prefix), if close enough to be a likely typo. */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  const lower = input.toLowerCase();
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const cl = c.toLowerCase();
    const d = editDistance(lower, cl);
    const prefix = Math.min(lower.length, cl.length) >= 3 && (cl.startsWith(lower) || lower.startsWith(cl));
    if (d > Math.max(2, Math.floor(c.length / 3)) && !prefix) continue;
    if (d < bestScore) {
      best = c;
      bestScore = d;
    }
  }
  return best;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = row;
  }
  return prev[b.length]!;
}
