/**
 * Signed desired state (SPEC §10), wired to a Git engine: whether the commits
 * a new revision brings may be applied.
 *
 * - `head`: the tip must verify.
 * - `strict`: every commit in `last..tip` (git rev-list semantics, merges'
 *   side branches included) must verify, `last` being the revision in force
 *   (restored from the state at start). A shallow cache is deepened, bounded,
 *   as far as the walk needs; when the history cannot be had the revision is
 *   rejected, never accepted unchecked. A history that no longer contains
 *   `last` (a force-push) is rejected unless `allowRewrite` and the tip
 *   verifies. With no revision in force yet (the first start) the tip alone
 *   is verified: it becomes the anchor for everything after it.
 *
 * Every check reads the raw commit object and checks it hashes to its oid
 * (signedCommit), so what is verified is what will be applied. Failures are
 * problems like an invalid manifest's: the revision is rejected, the last good
 * one stays.
 */
import type { SourceProblem } from '../../core/errors.js';
import { StewardError } from '../../core/errors.js';
import type { VerifyConfig } from '../config.js';
import type { GitEngine } from './git.js';
import { parseAllowedSigners } from './verify/allowed-signers.js';
import { type ChainCommit, commitsSince, DEFAULT_CHAIN_LIMIT } from './verify/chain.js';
import { committerTime, signedCommit } from './verify/commit.js';
import { readOpenPgpKeys } from './verify/openpgp.js';
import { type TrustPolicy, verifyCommit } from './verify/verify.js';

export interface Verification {
  readonly mode: 'strict' | 'head';
  readonly allowRewrite: boolean;
  readonly trust: TrustPolicy;
  /** Most commits strict mode reads in one check. */
  readonly limit: number;
}

export type RevisionCheck =
  | { ok: true; signer: string; keyId: string }
  | { ok: false; problems: SourceProblem[] };

/** How many commits each deepening asks for, in turn; past the last the history is "not available". */
const DEEPEN_STEPS = [64, 512, 4096, DEFAULT_CHAIN_LIMIT];
/** A rejected revision lists at most this many failing commits. */
const MAX_PROBLEMS = 10;

const short = (oid: string): string => oid.slice(0, 12);

/** The trust policy from the config's files (already checked at parse time). @throws StewardError CONFIG_INVALID */
export async function loadVerification(v: VerifyConfig): Promise<Verification> {
  const problems: SourceProblem[] = [];
  const openpgp = [];
  for (const f of v.openpgp) {
    const r = await readOpenPgpKeys(f.text, f.file);
    openpgp.push(...r.keys);
    problems.push(...r.problems);
  }
  const ssh = v.ssh ? parseAllowedSigners(v.ssh.text, v.ssh.file) : { signers: [], problems: [] };
  problems.push(...ssh.problems);
  if (problems.length > 0)
    throw new StewardError(
      'CONFIG_INVALID',
      problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`).join('\n'),
      { problems },
    );
  return {
    mode: v.mode,
    allowRewrite: v.allowRewrite,
    trust: { openpgp, ssh: ssh.signers },
    limit: DEFAULT_CHAIN_LIMIT,
  };
}

/** A signature problem: names reason `signature`, the commit and (in `message`) the key. */
export function signatureProblem(oid: string, message: string): SourceProblem {
  return { file: `commit ${short(oid)}`, line: 1, col: 1, message: `signature: ${message}` };
}

/** parents and committer time from a raw commit object's headers. */
function chainInfo(raw: Buffer): ChainCommit {
  const end = raw.indexOf('\n\n');
  const headers = raw
    .subarray(0, end === -1 ? raw.length : end)
    .toString('latin1')
    .split('\n');
  const parents = headers.filter((h) => h.startsWith('parent ')).map((h) => h.slice(7).trim());
  return { parents, time: (committerTime(raw)?.getTime() ?? 0) / 1000 };
}

type ReadRaw = (oid: string) => Promise<Buffer | null>;

/** Verifies one commit read through `readRaw`. */
async function verifyOne(readRaw: ReadRaw, v: Verification, oid: string, at: Date): Promise<RevisionCheck> {
  const raw = await readRaw(oid);
  // Not a rejection (that would stick to the sha): an error, so the next poll tries again.
  if (!raw)
    throw new StewardError(
      'SOURCE_UNREACHABLE',
      `commit ${short(oid)} is not available to verify; will retry`,
    );
  const commit = signedCommit(oid, raw);
  if (!commit)
    return {
      ok: false,
      problems: [
        signatureProblem(oid, `commit ${short(oid)}: the object does not hash to its id; not applied`),
      ],
    };
  const r = await verifyCommit(commit, v.trust, at);
  if (r.ok) return { ok: true, signer: r.signer, keyId: r.keyId };
  return { ok: false, problems: [signatureProblem(oid, `${r.reason}: ${r.message}`)] };
}

/**
 * Whether `tip` may be applied, given `last` (the verified revision in force,
 * or null). Never accepts what it could not check.
 */
export async function checkRevision(
  engine: GitEngine,
  v: Verification,
  tip: string,
  last: string | null,
  fullRef: string | null,
  at: Date,
): Promise<RevisionCheck> {
  const readRaw: ReadRaw = (oid) => engine.readCommitObject(oid);
  const head = await verifyOne(readRaw, v, tip, at);
  if (v.mode === 'head' || last === null || last === tip || !head.ok) return head;
  // The walk's view of each commit (parents, time: small) is kept across deepenings; a missing one is asked again.
  const known = new Map<string, ChainCommit>();
  const read = async (oid: string): Promise<ChainCommit | null> => {
    const hit = known.get(oid);
    if (hit) return hit;
    const raw = await readRaw(oid);
    const info = raw ? chainInfo(raw) : null;
    if (info) known.set(oid, info);
    return info;
  };
  let chain = await commitsSince(tip, last, read, v.limit);
  for (const by of DEEPEN_STEPS) {
    if (chain.ok || chain.reason !== 'missing' || fullRef === null) break;
    await engine.deepen(fullRef, by);
    chain = await commitsSince(tip, last, read, v.limit);
  }
  if (!chain.ok) {
    if (chain.reason === 'not-ancestor') {
      if (v.allowRewrite) return head;
      return {
        ok: false,
        problems: [
          signatureProblem(
            tip,
            `rewrite: ${chain.message}; strict mode rejects it: push on top of the last verified commit, or set source.verify.allowRewrite: true to accept a rewritten history whose tip verifies`,
          ),
        ],
      };
    }
    const why =
      chain.reason === 'missing'
        ? `history: commit ${short(chain.oid)} could not be fetched (the source's history is shallower than needed), so the commits between the last verified commit ${short(last)} and ${short(tip)} cannot all be verified; push on top of the last verified commit, or check the repository's history`
        : `history: ${chain.message}`;
    return { ok: false, problems: [signatureProblem(tip, why)] };
  }
  const problems: SourceProblem[] = [];
  for (const oid of chain.commits) {
    if (oid === tip) continue;
    const r = await verifyOne(readRaw, v, oid, at);
    if (!r.ok) problems.push(...r.problems);
    if (problems.length >= MAX_PROBLEMS) break;
  }
  if (problems.length > 0)
    return {
      ok: false,
      problems: problems.map((p) => ({
        ...p,
        message: `${p.message} (strict mode: every commit after ${short(last)} up to ${short(tip)} must verify)`,
      })),
    };
  return head;
}
