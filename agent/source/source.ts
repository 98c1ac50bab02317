/**
 * Desired state: the last GOOD revision of the Git source. A new revision is
 * parsed and validated as a whole before it replaces the current one; a bad
 * one is rejected with every problem, and the good one stays in force.
 */
import type { KindDefinition } from '../../providers/types.js';
import type { DesiredResource } from '../../providers/types.js';
import { isStewardError, type SourceProblem, StewardError } from '../../core/errors.js';
import { parseRevision } from '../manifest.js';
import type { GitEngine } from './engine.js';

export interface Revision {
  sha: string;
  fetchedAt: number;
  resources: DesiredResource[];
}

export type PollOutcome =
  | { kind: 'unchanged'; sha: string }
  | { kind: 'accepted'; revision: Revision }
  | { kind: 'rejected'; sha: string; problems: SourceProblem[] }
  | { kind: 'error'; error: StewardError };

export class DesiredStateSource {
  current: Revision | null = null;
  rejected: { sha: string; problems: SourceProblem[]; at: number } | null = null;
  lastError: StewardError | null = null;

  constructor(
    readonly repo: GitEngine,
    private readonly kinds: ReadonlyMap<string, KindDefinition>,
    private readonly clock: () => number,
  ) {}

  /** Parses the revision at `sha` (already available locally). */
  private async load(
    sha: string,
  ): Promise<{ ok: true; revision: Revision } | { ok: false; problems: SourceProblem[] }> {
    const read = await this.repo.readManifests(sha);
    const parsed = parseRevision(read.files, this.kinds);
    const problems = [
      ...read.problems.map((p) => ({ file: p.file, line: 1, col: 1, message: p.message })),
      ...(parsed.ok ? [] : parsed.problems),
    ];
    if (problems.length > 0) return { ok: false, problems };
    return { ok: true, revision: { sha, fetchedAt: this.clock(), resources: parsed.resources } };
  }

  /**
   * Re-establishes a revision accepted before a restart, so that a bad commit
   * pushed while the agent was down cannot replace it. Best effort.
   */
  async restore(sha: string): Promise<boolean> {
    try {
      const r = await this.load(sha);
      if (r.ok) this.current = r.revision;
      return r.ok;
    } catch {
      return false;
    }
  }

  /** Asks the source for its ref; fetches and validates only when it moved. Never throws. */
  async poll(): Promise<PollOutcome> {
    try {
      const { sha, fullRef } = await this.repo.resolve();
      this.lastError = null;
      if (sha === this.current?.sha) {
        this.rejected = null; // the branch went back to the good revision: nothing is rejected any more
        return { kind: 'unchanged', sha };
      }
      if (sha === this.rejected?.sha) return { kind: 'unchanged', sha };
      await this.repo.ensure(sha, fullRef);
      const r = await this.load(sha);
      if (!r.ok) {
        this.rejected = { sha, problems: r.problems, at: this.clock() };
        return { kind: 'rejected', sha, problems: r.problems };
      }
      this.current = r.revision;
      this.rejected = null;
      return { kind: 'accepted', revision: r.revision };
    } catch (e) {
      const error = isStewardError(e)
        ? e
        : new StewardError('SOURCE_UNREACHABLE', `reading the source failed: ${(e as Error)?.message ?? e}`);
      this.lastError = error;
      return { kind: 'error', error };
    }
  }
}
