/**
 * The guardrail decision of one cycle: which drifted resources the agent may
 * act on now, and why every other one is held.
 *
 * Protects against everything SPEC §2 lists, combined in one pure function of
 * (drift, persisted state, config, now) so that the loop stays thin and every
 * combination can be tested with tables. No I/O, no clock, no randomness.
 *
 * Steps, in order; each drift leaves at the first step that holds it:
 *
 *  a. field policy — split each patch into revert and report operations; a
 *     drift with nothing to revert is held `report-only` and never counts as
 *     "would change";
 *  b. mass drift — if too many resources would change, not counting those an
 *     approval covers: hold all `mass-drift` and ask for a freeze (or, when a
 *     freeze is already in force, hold them `frozen`); checked whatever the
 *     mode, so a bad revision seen in observe mode is still frozen out;
 *  c. gate — frozen → `frozen`; observe mode → `observe`;
 *  c'. change window — closed (policies/windows.ts, an override already
 *     counted) → `window`;
 *  d. soak — a revision still soaking → `soak`;
 *  e. backoff — a resource whose backoff has not elapsed → `backoff`;
 *  f. cap — oldest drift first (record `firstSeen`, else `now`), ties by key,
 *     up to `maxActionsPerCycle`; the rest → `cap`;
 *  g. rate limit — one token per selected resource; those beyond the granted
 *     tokens → `rate-limit` (oldest-first order kept).
 *
 * An approval (`approveRevision`) exempts from step b only, and only the
 * resources it was bound to (the drift it approved): drift on top of it — a
 * mass tamper during the rollout — is counted as usual.
 * Every drift appears exactly once in `act` ∪ `hold`.
 */
import type { Operation } from 'fast-json-patch';
import { inBackoff } from './backoff.js';
import { selectWithinCap } from './cap.js';
import { classifyPatch } from './field-policy.js';
import { gate } from './gate.js';
import { checkMassDrift } from './mass-drift.js';
import { refill, take } from './rate-limit.js';
import type {
  Drift,
  FieldPolicy,
  Freeze,
  GuardrailConfig,
  Mode,
  ResourceRecord,
  TokenBucket,
} from './types.js';

/** What decide needs of a drift; the caller's own drift type extends it and comes back as it went in. */
export type DecideDrift = Drift & { resourcePolicy?: FieldPolicy | undefined; disruptive: readonly string[] };

export interface DecideInput<D extends DecideDrift = DecideDrift> {
  now: number;
  mode: Mode;
  freeze: Freeze | null;
  /**
   * `approvedKeys`: the drift keys an approval of this revision covers (exempt from the mass-drift
   * count), or null when the revision is not approved; `soaking`: from `soakStep`.
   */
  revision: { sha: string; approvedKeys: ReadonlySet<string> | null; soaking: boolean };
  /** Number of managed resources in the revision. */
  managed: number;
  drift: ReadonlyArray<D>;
  /** Per-resource records, by drift key. */
  records: ReadonlyMap<string, ResourceRecord>;
  bucket: TokenBucket | null;
  config: GuardrailConfig;
  /** The change windows' verdict now (policies/windows.ts); absent: no windows, open. */
  window?: { readonly open: boolean };
}

export type HoldReason =
  | 'frozen'
  | 'observe'
  | 'soak'
  | 'report-only'
  | 'backoff'
  | 'rate-limit'
  | 'cap'
  | 'mass-drift'
  | 'state-unwritable'
  | 'window'
  /** fleet.rollout: this agent's wave is not open yet for the revision. */
  | 'wave'
  /** A shared (sharded) resource whose shard this agent does not hold (agent/fleet/fence.ts). */
  | 'shard';

export interface ActDecision<D extends DecideDrift = DecideDrift> {
  /** The caller's drift, as passed in. */
  drift: D;
  /** The operations to apply: revert operations only. */
  ops: Operation[];
}

export interface HoldDecision<D extends DecideDrift = DecideDrift> {
  drift: D;
  reason: HoldReason;
}

export interface DecideOutput<D extends DecideDrift = DecideDrift> {
  /** In the order to apply: oldest drift first. */
  act: ActDecision<D>[];
  hold: HoldDecision<D>[];
  /** Set when mass drift trips on the drift no approval covers and no freeze was in force: persist it and alert. */
  freeze: { reason: string } | null;
  /** The bucket to persist: refilled to `now`, minus the tokens taken. */
  bucket: TokenBucket;
}

interface Candidate<D extends DecideDrift> {
  key: string;
  firstSeen: number;
  drift: D;
  ops: Operation[];
}

/**
 * A bucket that was full and is full again: the one it was (its time is old, but a refill from it gives
 * the same answer), so a cycle that takes nothing has nothing of the bucket to persist.
 */
function keepFull(before: TokenBucket | null, refilled: TokenBucket, burst: number): TokenBucket {
  const full = Math.max(0, burst);
  return before !== null && before.tokens === full && refilled.tokens === full ? before : refilled;
}

/** Decides one cycle. Pure: inputs are not modified; each drift comes back in `act` or `hold` as it was passed. */
export function decide<D extends DecideDrift>(input: DecideInput<D>): DecideOutput<D> {
  const hold: HoldDecision<D>[] = [];
  const holdAll = (items: readonly Candidate<D>[], reason: HoldReason): void => {
    for (const c of items) hold.push({ drift: c.drift, reason });
  };
  const refilled = keepFull(
    input.bucket,
    refill(input.bucket, input.now, input.config.rateLimit),
    input.config.rateLimit.burst,
  );

  // a. field policy
  const all = input.drift.map((d) => toCandidate(d, input));
  holdAll(
    all.filter((c) => c.ops.length === 0),
    'report-only',
  );
  const candidates = all.filter((c) => c.ops.length > 0);

  // b. mass drift (what an approval covers does not count)
  const approved = input.revision.approvedKeys;
  const massDrift = checkMassDrift({
    wouldChange: approved ? candidates.filter((c) => !approved.has(c.key)).length : candidates.length,
    managed: input.managed,
    config: input.config.massDrift,
  });
  const stop = (reason: HoldReason, freeze: { reason: string } | null): DecideOutput<D> => {
    holdAll(candidates, reason);
    return { act: [], hold, freeze, bucket: refilled };
  };
  if (massDrift.trip) {
    return input.freeze === null ? stop('mass-drift', { reason: massDrift.reason }) : stop('frozen', null);
  }

  // c. freeze / observe
  const gated = gate({ mode: input.mode, freeze: input.freeze });
  if (!gated.act) return stop(gated.reason, null);

  // c'. change window (after the gate: an override never lifts a freeze or observe mode)
  if (input.window?.open === false) return stop('window', null);

  // d. soak
  if (input.revision.soaking) return stop('soak', null);

  // e. backoff
  const backingOff = candidates.filter((c) => isBackingOff(c, input));
  holdAll(backingOff, 'backoff');
  const backingOffSet = new Set(backingOff);
  const ready = candidates.filter((c) => !backingOffSet.has(c));

  // f. cap
  const { selected, deferred } = selectWithinCap(ready, input.config.maxActionsPerCycle);
  holdAll(deferred, 'cap');

  // g. rate limit
  const taken = take(refilled, selected.length);
  if (taken.granted > 0 && refilled === input.bucket)
    // The kept full bucket's time is old: what remains after the take is counted from now.
    taken.bucket = { tokens: taken.bucket.tokens, updatedAt: Math.max(input.now, refilled.updatedAt) };
  holdAll(selected.slice(taken.granted), 'rate-limit');
  const act = selected.slice(0, taken.granted).map((c) => ({ drift: c.drift, ops: c.ops }));
  return { act, hold, freeze: null, bucket: taken.bucket };
}

/** The operations of `d` that its field policy lets the agent revert; none means the drift is report-only. */
export function revertOps(d: DecideDrift, config: GuardrailConfig): Operation[] {
  return classifyPatch({
    kind: d.kind,
    patch: d.patch,
    resourcePolicy: d.resourcePolicy,
    kindDisruptive: d.disruptive,
    config: config.fieldPolicy,
  }).revert;
}

function toCandidate<D extends DecideDrift>(d: D, input: DecideInput<D>): Candidate<D> {
  const firstSeen = input.records.get(d.key)?.firstSeen ?? input.now;
  return { key: d.key, firstSeen, drift: d, ops: revertOps(d, input.config) };
}

function isBackingOff<D extends DecideDrift>(c: Candidate<D>, input: DecideInput<D>): boolean {
  const record = input.records.get(c.key);
  return record !== undefined && inBackoff(record, input.now);
}
