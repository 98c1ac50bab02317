/**
 * Desired state: the last GOOD revision of the Git source. A new revision is
 * parsed and validated as a whole before it replaces the current one; a bad
 * one is rejected with every problem, and the good one stays in force.
 */
import type { KindDefinition } from '../../providers/types.js';
import type { DesiredResource } from '../../providers/types.js';
import { isStewardError, type SourceProblem, StewardError } from '../../core/errors.js';
import { ManifestCache, parseRevision } from '../manifest.js';
import type { VerifyConfig } from '../config.js';
import type { GitEngine } from './engine.js';
import type { RevisionCheck, Verification } from './verification.js';

/** Signature checking (and openpgp with it) is imported only when source.verify is set. */
const verificationModule = () => import('./verification.js');

export interface Revision {
  sha: string;
  fetchedAt: number;
  resources: DesiredResource[];
  /** The signer (OpenPGP fingerprint, or `<principals> SHA256:<fp>`) when source.verify is set; null when unverified. */
  signer?: string | null;
  /** true: its signatures verified under source.verify; null: source.verify is not set ("unverified"). */
  verified?: true | null;
}

export type PollOutcome =
  | { kind: 'unchanged'; sha: string }
  | { kind: 'accepted'; revision: Revision }
  | { kind: 'rejected'; sha: string; problems: SourceProblem[]; reason?: 'signature' }
  | { kind: 'error'; error: StewardError };

export class DesiredStateSource {
  current: Revision | null = null;
  rejected: { sha: string; problems: SourceProblem[]; at: number } | null = null;
  lastError: StewardError | null = null;

  private verification: Promise<Verification> | null = null;
  /** The last revision's parsed manifests by path and blob id: a push re-reads and re-parses what it changed. */
  readonly manifests: ManifestCache;

  constructor(
    readonly repo: GitEngine,
    private readonly kinds: ReadonlyMap<string, KindDefinition>,
    private readonly clock: () => number,
    /** Signed desired state (SPEC §10); null: every revision is applied unverified. */
    readonly verify: VerifyConfig | null = null,
    /** One revision only (`steward plan`): the manifest cache keeps nothing for a later one. */
    opts: { oneShot?: boolean } = {},
  ) {
    this.manifests = new ManifestCache(opts);
  }

  /**
   * Reads the trust policy (source.verify's keys) now, so a key file that
   * cannot be used stops the agent at start (CONFIG_INVALID) instead of
   * failing every poll. No-op without source.verify.
   */
  async prepare(): Promise<void> {
    if (!this.verify) return;
    const { loadVerification } = await verificationModule();
    this.verification ??= loadVerification(this.verify);
    try {
      await this.verification;
    } catch (e) {
      this.verification = null;
      throw e;
    }
  }

  /**
   * Whether `sha`'s signatures satisfy source.verify (always, without it);
   * strict mode checks every commit since the revision in force.
   */
  private async checkSignatures(sha: string, fullRef: string | null): Promise<RevisionCheck | null> {
    if (!this.verify) return null;
    const { checkRevision, loadVerification } = await verificationModule();
    this.verification ??= loadVerification(this.verify);
    const v = await this.verification;
    return checkRevision(this.repo, v, sha, this.current?.sha ?? null, fullRef, new Date(this.clock()));
  }

  /** Parses the revision at `sha` (already available locally), after its signatures are checked. */
  private async load(
    sha: string,
    fullRef: string | null,
  ): Promise<
    { ok: true; revision: Revision } | { ok: false; problems: SourceProblem[]; reason?: 'signature' }
  > {
    const signed = await this.checkSignatures(sha, fullRef);
    if (signed && !signed.ok) return { ok: false, problems: signed.problems, reason: 'signature' };
    let read = await this.repo.readManifests(sha, this.manifests.has);
    if (read.unchanged?.some((u) => !this.manifests.has(u.file, u.oid)))
      read = await this.repo.readManifests(sha); // the cache changed meanwhile: read everything
    const parsed = parseRevision(read.files, this.kinds, this.manifests, read.unchanged);
    const problems = [
      ...read.problems.map((p) => ({ file: p.file, line: 1, col: 1, message: p.message })),
      ...(parsed.ok ? [] : parsed.problems),
    ];
    if (problems.length > 0) return { ok: false, problems };
    const signer = signed ? signed.signer : null;
    const verified = signed ? true : null;
    return {
      ok: true,
      revision: { sha, fetchedAt: this.clock(), resources: parsed.resources, signer, verified },
    };
  }

  /**
   * Re-establishes a revision accepted before a restart, so that a bad commit
   * pushed while the agent was down cannot replace it. Best effort. With
   * source.verify the restored revision must verify too (alone: it is the
   * anchor strict mode checks from), so a state that names an unsigned
   * revision cannot bring it back.
   */
  async restore(sha: string): Promise<boolean> {
    try {
      const r = await this.load(sha, null);
      if (r.ok) {
        this.current = r.revision;
        await this.repo.retain?.(sha).catch(() => undefined); // best effort: without it a prune may drop this revision, and a restart waits for the next poll
      }
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
      const r = await this.load(sha, fullRef);
      if (!r.ok) {
        this.rejected = { sha, problems: r.problems, at: this.clock() };
        return { kind: 'rejected', sha, problems: r.problems, ...(r.reason ? { reason: r.reason } : {}) };
      }
      this.current = r.revision;
      this.rejected = null;
      await this.repo.retain?.(sha).catch(() => undefined); // best effort: without it a prune may drop this revision, and a restart waits for the next poll
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
