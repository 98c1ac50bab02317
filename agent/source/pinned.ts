/**
 * A Git engine pinned to one commit (`steward plan --ref SHA`): it resolves to
 * that commit instead of the tip of source.ref, and makes it available by
 * fetching source.ref — then, if the commit is older, its history in steps —
 * into the caller's cache. Reads only; works with either engine, since it
 * uses nothing but the GitEngine interface.
 */
import { StewardError } from '../../core/errors.js';
import type { GitEngine } from './git.js';

/** How far behind the tip of source.ref a pinned commit is looked for, in commits. */
export const PINNED_MAX_DEPTH = 256;
const STEP = 64;

/** A full commit id (SHA-1 or SHA-256). */
export const FULL_COMMIT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

export function pinnedEngine(engine: GitEngine, sha: string): GitEngine {
  let tip: { sha: string; fullRef: string } | null = null;
  const tipOf = async () => {
    tip ??= await engine.resolve();
    return tip;
  };
  const present = async (): Promise<boolean> => (await engine.readCommitObject(sha)) !== null;
  return {
    get counters() {
      return engine.counters;
    },
    async resolve() {
      return { sha, fullRef: (await tipOf()).fullRef };
    },
    async ensure() {
      if (await present()) return;
      const t = await tipOf();
      await engine.ensure(t.sha, t.fullRef);
      for (let depth = 1; !(await present()); depth += STEP) {
        if (depth >= PINNED_MAX_DEPTH)
          throw new StewardError(
            'SOURCE_REF_NOT_FOUND',
            `commit ${sha.slice(0, 12)} is not among the last ${PINNED_MAX_DEPTH} commits of ${t.fullRef}; plan the branch or tag that has it (--ref NAME)`,
          );
        await engine.deepen(t.fullRef, STEP);
      }
    },
    readManifests: (at) => engine.readManifests(at),
    readCommitObject: (oid) => engine.readCommitObject(oid),
    deepen: (fullRef, by) => engine.deepen(fullRef, by),
  };
}
