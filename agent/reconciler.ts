/**
 * One reconcile cycle — the contract everything else builds around.
 *
 *   cycle(revision) reads observed state FRESH, diffs it on owned fields,
 *   lets the guardrails decide (a pure function), applies what they allow,
 *   and records the outcome: state, audit, events.
 *
 * No action without its record (SPEC §9): before the first action of a
 * cycle, the state with the rate-limit tokens taken and each acted
 * resource's attempt counted as if it failed (so its backoff holds after a
 * crash), and one audit intent line per action, are durable. If either write
 * fails, the cycle acts on nothing and reports `stateError`; if an outcome
 * line cannot be written, no further action starts. Detection always goes on.
 *
 * A cycle never throws for a resource's failure or a state write: observe
 * errors hold that resource (never "missing"), apply errors count towards its
 * backoff, and a write that fails is reported in `stateError` (the state it
 * returns is the agent's memory, never less cautious than what is on disk).
 *
 * `shouldStop()` is checked between actions: on shutdown the action in flight
 * finishes, no new one starts, and the state is still recorded.
 */
import type { ActDecision, DecideDrift, DecideOutput, HoldDecision, HoldReason } from '../policies/decide.js';
import { foldObservation } from '../policies/fold.js';
import { decide, revertOps } from '../policies/decide.js';
import { emptyRecord, trackConvergence } from '../policies/non-convergence.js';
import { soakStep } from '../policies/soak.js';
import type { Freeze, GuardrailConfig, Mode, ResourceRecord } from '../policies/types.js';
import { type ChangeWindow, type WindowVerdict, windowAt } from '../policies/windows.js';
import { providerFor } from '../providers/registry.js';
import type { ApplyAction, ApplyOutcome, KindDefinition, OwnedDoc, Provider } from '../providers/types.js';
import { type DetectedDrift, detect } from './detect.js';
import type { AgentEvent, EventSink } from './events.js';
import { createsResource, massDriftHint } from './first-start.js';
import type { GateAnswer, RolloutGateFn } from './fleet/rollout-gate.js';
import type { Logger } from './log.js';
import { type DisplayOp, displayPatchOf, opPaths } from './patch-view.js';
import type { Revision } from './source/source.js';
import { errorMessage } from '../core/errors.js';
import type { Approval, AuditRecord, PersistedState, StateStore, WriteAheadResult } from './state/types.js';
import type { ActionFence } from './fleet/fence.js';
import { CycleRecords } from './records.js';
import { nodeCrypto } from '../core/builtins.js';

export type DriftState = 'drifted' | 'backoff' | 'report-only' | 'stuck';

export interface DriftReport {
  kind: string;
  name: string;
  id: string | null;
  /** The display form (agent/patch-view.ts): no file contents, digests for sensitive resources. */
  patch: DisplayOp[];
  firstSeen: string | null;
  attempts: number;
  state: DriftState;
  /** Why it was not acted on this cycle, if it was not. */
  held: HoldReason | null;
}

export interface CycleReport {
  startedAt: string;
  durationMs: number;
  revision: string;
  mode: Mode;
  frozen: boolean;
  soaking: boolean;
  managed: number;
  drifted: number;
  observeErrors: number;
  applied: number;
  failed: number;
  held: Partial<Record<HoldReason, number>>;
  drift: DriftReport[];
  errors: Array<{ kind: string; name: string; id: string | null; code: string; error: string }>;
  /** Apply outcomes by kind, for metrics. */
  outcomes: Array<{ kind: string; outcome: 'applied' | 'failed' }>;
  /** For each resource that converged this cycle after drifting: seconds since its drift was first seen. */
  convergedAfterSeconds: number[];
  /** Resources with an open resource_stuck alert. */
  stuck: number;
  /** Set when a state or audit write of this cycle failed: nothing (further) was acted on. */
  stateError: string | null;
  /** Resources released this cycle (in the state, no longer in Git). */
  released: number;
  /** The change windows' verdict this cycle (policies/windows.ts). */
  window: WindowVerdict;
}

export interface ReconcilerDeps {
  kinds: ReadonlyMap<string, KindDefinition>;
  providers: ReadonlyMap<string, Provider>;
  store: StateStore;
  guardrails: GuardrailConfig;
  initialMode: Mode;
  clock: () => number;
  random: () => number;
  log: Logger;
  emit: EventSink;
  /** Change windows (SPEC §12); none: always open. */
  windows?: readonly ChangeWindow[];
  /** The agent's config file, named in the commands a freeze's hint says to run. */
  configFile?: string | null;
  /** fleet.rollout with a shared backend: whether this agent's wave is open for a revision. */
  gate?: RolloutGateFn;
  /** Shards and fencing for shared kinds (EC2): act only on held shards, write-ahead conditional on the epoch. */
  fence?: ActionFence | undefined;
}

/** `freeze.by` of a freeze set by the mass-drift halt. */
export const MASS_DRIFT_ACTOR = 'steward (mass-drift halt)';

/**
 * What has run out by `now`, pure: a freeze past its `until` (never the mass-drift halt's) and a window
 * override past its end; `next` is the state without them. The cycle persists `next` before it counts;
 * `steward plan` plans on it without writing anything.
 */
export function lapsed(
  state: PersistedState,
  now: number,
): { next: PersistedState; freezeOver: boolean; overrideOver: boolean } {
  const f = state.freeze;
  const freezeOver = f !== null && f.by !== MASS_DRIFT_ACTOR && f.until != null && now >= f.until;
  const o = state.windowOverride;
  const overrideOver = o != null && now >= o.until;
  const next: PersistedState =
    freezeOver || overrideOver
      ? {
          ...state,
          ...(freezeOver ? { freeze: null } : {}),
          ...(overrideOver ? { windowOverride: null } : {}),
        }
      : state;
  return { next, freezeOver, overrideOver };
}

/** The drift decide sees, carrying the detection it came from (handed back in act/hold: no re-join by key). */
export type CycleDrift = DecideDrift & { detected: DetectedDrift };
type Act = ActDecision<CycleDrift>;
type Hold = HoldDecision<CycleDrift>;

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** A detected drift as decide sees it, carrying the detection (shared with the benchmark). */
export function toDecideDrift(d: DetectedDrift, kinds: ReadonlyMap<string, KindDefinition>): CycleDrift {
  return {
    detected: d,
    key: d.resource.key,
    kind: d.resource.kind,
    name: d.resource.name,
    id: d.id,
    patch: d.patch,
    resourcePolicy: d.resource.onDrift,
    disruptive: kinds.get(d.resource.kind)?.disruptive ?? [],
  };
}

export class Reconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  /** Runs one cycle on `revision`, given the state loaded before; returns the new state and a report. */
  async cycle(
    revision: Revision,
    loaded: PersistedState,
    shouldStop: () => boolean,
  ): Promise<{ state: PersistedState; report: CycleReport }> {
    const { deps } = this;
    const started = deps.clock();
    const shared = await this.refreshShared(loaded, revision.sha);
    const mode = shared.state.mode ?? deps.initialMode;
    const before = CycleRecords.of(shared.state.resources);

    const detection = await this.detect(revision, before);
    const now = deps.clock();
    const expiry = await this.expire(shared.state, now);
    for (const e of expiry.events) deps.emit(e);
    const state = expiry.state;
    const window = windowAt(deps.windows ?? [], now, state.windowOverride ?? null);
    const { records, convergedAfterSeconds } = this.fold(detection, before, now);
    const approvals = this.settleApprovals(state.approvals, revision.sha, detection);
    const soak = soakStep(state.soak, revision.sha, deps.guardrails.soak.observeCycles);
    const shards = this.shardStep(revision, detection);
    const decided = this.decide(
      revision,
      state,
      approvals,
      soak.soaking,
      mode,
      shards.mine,
      records,
      now,
      window,
    );
    const approved = approvals.some((a) => a.sha === revision.sha);
    const gated = shared.error === null ? await this.gateWaves(decided, revision.sha, approved, now) : null;
    const decision = gated?.decision ?? decided;
    const unreachable = shared.error ?? gated?.error ?? null;

    let stateError: string | null = unreachable ?? shards.error ?? expiry.error;
    let freeze = state.freeze;
    if (decision.freeze) {
      freeze = { reason: decision.freeze.reason, by: MASS_DRIFT_ACTOR, since: now, until: null };
      const creates = detection.drift.filter((d) => createsResource(d.patch)).length;
      const hint = massDriftHint(revision.sha, deps.configFile ?? null, creates, detection.drift.length);
      deps.emit({ type: 'mass_drift_frozen', reason: decision.freeze.reason, sha: revision.sha, hint });
      // Persisted before anything else happens: it must survive a crash right after. In memory it holds anyway.
      const saved = await this.tryWrite(() => deps.store.save({ ...state, freeze, approvals }));
      stateError ??= saved;
    }
    if (gated?.halt) {
      // The gate froze the fleet, in the transaction that recorded the halt: adopted, not written again.
      freeze = gated.halt.freeze;
      if (gated.halt.froze) deps.emit({ type: 'frozen', reason: freeze.reason, by: freeze.by });
    }

    let base: PersistedState = { ...state, freeze, approvals, soak: soak.state };
    // Shared (sharded) resources first: their intents are recorded under the lease epoch, or they are held.
    const fenced =
      unreachable === null
        ? await this.fenceStep(decision.act)
        : { act: [...decision.act], hold: [], ids: new Map<string, string>(), error: null };
    stateError ??= fenced.error;
    const ahead =
      unreachable === null
        ? await this.writeAhead(fenced.act, revision, base, records, decision.bucket, now, fenced.ids)
        : { ...noWriteAhead(), error: unreachable };
    stateError ??= ahead.error;
    const admitted = this.admitted({ ...decision, act: fenced.act }, ahead);
    const act = admitted.act;
    const hold = [...admitted.hold, ...shards.hold, ...fenced.hold];
    if (ahead.blocked) {
      // Frozen or in observe by another agent since this cycle read the fleet: adopt it, act on nothing.
      freeze = ahead.blocked.freeze;
      base = { ...base, freeze, mode: ahead.blocked.mode };
    }

    // A window that closes mid-cycle (a deny window starts, an override ends) stops what has not started.
    const closed = () => !windowAt(deps.windows ?? [], deps.clock(), state.windowOverride ?? null).open;
    const applied = await this.apply(act, revision, ahead.ids, () => shouldStop() || closed());
    stateError ??= applied.error;
    await this.closeFenced(fenced.ids, applied.outcomes);
    const counts = this.record(applied.outcomes, records, ahead.pessimistic);
    const released = this.release(revision, records);

    const next: PersistedState = {
      ...base,
      bucket: ahead.error === null ? decision.bucket : state.bucket,
      revision: {
        sha: revision.sha,
        acceptedAt: state.revision?.sha === revision.sha ? state.revision.acceptedAt : revision.fetchedAt,
      },
      resources: records.toObject(),
    };
    stateError ??= await this.tryWrite(() => deps.store.save(next));

    const report = this.report({
      started,
      revision,
      mode,
      frozen: freeze !== null,
      soaking: soak.soaking,
      detection,
      records,
      hold,
      outcomes: applied.outcomes,
      counts,
      convergedAfterSeconds,
      stateError,
      released,
      window,
    });
    return { state: next, report };
  }

  /**
   * Ends what has run out by `now`: a freeze past its `until` (never the mass-drift halt's) and a window
   * override past its end. Persisted before it counts: if the write fails the agent stays frozen, as the
   * durable state says (an override past its end opens nothing whether or not it is written away).
   * Never approves anything. `wrote`: a write was attempted (its outcome is `error`); `events`: what ended,
   * for the caller to emit once the returned state is in force.
   */
  async expire(
    state: PersistedState,
    now: number,
  ): Promise<{
    state: PersistedState;
    error: string | null;
    wrote: boolean;
    events: AgentEvent[];
    /** Over by this agent's clock but not by the shared backend's: still frozen, ask again shortly. */
    deferred: boolean;
  }> {
    const over = lapsed(state, now);
    let { next, freezeOver } = over;
    const { overrideOver } = over;
    const none = { state, error: null, wrote: false, events: [] as AgentEvent[], deferred: false };
    if (!freezeOver && !overrideOver) return none;
    const { store } = this.deps;
    let deferred = false;
    if (freezeOver && store.endFreeze && state.freeze) {
      // A shared freeze ends by the backend's clock: a clock running ahead here does not end it for the fleet.
      const seen = state.freeze;
      let ended = false;
      const error = await this.tryWrite(async () => {
        ended = await store.endFreeze!(seen);
      });
      if (error !== null) return { ...none, error, wrote: true };
      if (!ended) {
        freezeOver = false;
        deferred = true;
        next = { ...next, freeze: seen };
      }
    }
    if (!freezeOver && !overrideOver) return { ...none, deferred };
    const error = await this.tryWrite(() => store.save(next));
    if (error !== null) return { ...none, error, wrote: true, deferred };
    const events: AgentEvent[] = [];
    if (freezeOver) events.push({ type: 'unfrozen', by: 'expiry', approveRevision: null });
    if (overrideOver) events.push({ type: 'window_override_ended', by: 'expiry' });
    return { state: next, error: null, wrote: true, events, deferred };
  }

  /** Detect: fresh observe + owned-field diff, three-way against what was applied last. */
  private detect(revision: Revision, records: ReadonlyMap<string, ResourceRecord>) {
    return detect(
      revision.resources,
      this.deps.kinds,
      this.deps.providers,
      (k) => records.get(k)?.lastApplied as OwnedDoc | undefined,
    );
  }

  /**
   * Fold the observation into the records BEFORE deciding (policies/fold.ts), and emit its transitions.
   * `records` is handed over: the cycle's own map, updated in place.
   */
  private fold(
    detection: Awaited<ReturnType<typeof detect>>,
    records: CycleRecords,
    now: number,
  ): { records: CycleRecords; convergedAfterSeconds: number[] } {
    const { deps } = this;
    const folded = foldObservation({
      converged: detection.converged,
      drifted: detection.drift.map((d) => ({
        key: d.resource.key,
        desired: d.resource.desired,
        settleMs: deps.kinds.get(d.resource.kind)?.settleMs ?? 0,
      })),
      records,
      handOver: true,
      now,
      config: this.convergenceConfig(),
      random: deps.random,
    });
    for (const key of folded.recovered) deps.emit({ type: 'resource_recovered', key, id: null });
    if (folded.stuck.length > 0) {
      const ids = new Map(detection.drift.map((d) => [d.resource.key, d.id]));
      for (const { key, attempts } of folded.stuck)
        deps.emit({ type: 'resource_stuck', key, id: ids.get(key) ?? null, attempts });
    }
    // Handed over, so updated in place: the cycle's records are still `records` (and know what changed).
    if (folded.records !== records)
      throw new Error('internal: the fold did not update the cycle records in place');
    return { records, convergedAfterSeconds: folded.convergedAfterSeconds };
  }

  /**
   * Approvals: the one for this revision is bound to the drift it approved (if it was not yet), and spent
   * resource by resource as that drift converges (wholly once none is left) — so a later tamper of what
   * converged, or a mass tamper under the same revision, is counted by the halt again. A report-only drift never converges (nothing reverts it), so it keeps no approval alive. An
   * approval of another revision is spent too: Git moved on (or never got there), and a commit brought
   * back later is not a change anyone approved now.
   */
  private settleApprovals(
    approvals: readonly Approval[],
    sha: string,
    detection: Awaited<ReturnType<typeof detect>>,
  ): Approval[] {
    for (const a of approvals)
      if (a.sha !== sha)
        this.deps.emit({ type: 'approval_spent', sha: a.sha, resources: a.keys?.length ?? 0 });
    const mine = approvals.find((a) => a.sha === sha);
    if (!mine) return [];
    const drifted = detection.drift.map((d) => d.resource.key);
    const keys = mine.keys ?? drifted;
    const open = new Set(
      detection.drift
        .filter((d) => revertOps(toDecideDrift(d, this.deps.kinds), this.deps.guardrails).length > 0)
        .map((d) => d.resource.key),
    );
    // Spent resource by resource: what converged leaves the approval, so a later tamper of it counts again.
    const left = keys.filter((k) => open.has(k));
    if (left.length === 0) {
      this.deps.emit({ type: 'approval_spent', sha, resources: keys.length });
      return [];
    }
    return [{ ...mine, keys: left }];
  }

  /** Decide (pure): what the guardrails allow this cycle. */
  private decide(
    revision: Revision,
    state: PersistedState,
    approvals: readonly Approval[],
    soaking: boolean,
    mode: Mode,
    detection: Awaited<ReturnType<typeof detect>>,
    records: ReadonlyMap<string, ResourceRecord>,
    now: number,
    window: WindowVerdict,
  ): DecideOutput<CycleDrift> {
    const approval = approvals.find((a) => a.sha === revision.sha);
    const decideDrift: CycleDrift[] = detection.drift.map((d) => toDecideDrift(d, this.deps.kinds));
    return decide({
      now,
      mode,
      freeze: state.freeze,
      revision: { sha: revision.sha, approvedKeys: approval ? new Set(approval.keys) : null, soaking },
      managed: detection.managed,
      drift: decideDrift,
      records,
      bucket: state.bucket,
      config: this.deps.guardrails,
      window,
    });
  }

  /**
   * Shards (SPEC §11): the drift of a shared resource whose shard this agent does not hold is detected and
   * reported, but held (`shard`) before the guardrails decide, so caps and tokens go to what it may act on
   * (mass drift is then counted over the resources of its shards). With the lease database lost, nothing is
   * decided at all (`state-unwritable`): fail closed, detection goes on.
   */
  private shardStep(
    revision: Revision,
    detection: Awaited<ReturnType<typeof detect>>,
  ): { mine: Awaited<ReturnType<typeof detect>>; hold: Hold[]; error: string | null } {
    const fence = this.deps.fence;
    if (!fence) return { mine: detection, hold: [], error: null };
    const asHold = (d: DetectedDrift, reason: HoldReason): Hold => ({
      drift: toDecideDrift(d, this.deps.kinds),
      reason,
    });
    if (fence.error !== null)
      return {
        mine: { ...detection, drift: [] },
        hold: detection.drift.map((d) => asHold(d, 'state-unwritable')),
        error: `shard leases unavailable: ${fence.error}`,
      };
    const theirs = (kind: string, key: string) => fence.covers(kind) && !fence.heldNow(key);
    const hold = detection.drift
      .filter((d) => theirs(d.resource.kind, d.resource.key))
      .map((d) => asHold(d, 'shard'));
    if (hold.length === 0 && !revision.resources.some((r) => theirs(r.kind, r.key)))
      return { mine: detection, hold, error: null };
    const notMine = revision.resources.filter((r) => theirs(r.kind, r.key)).length;
    return {
      mine: {
        ...detection,
        drift: detection.drift.filter((d) => !theirs(d.resource.kind, d.resource.key)),
        managed: Math.max(0, detection.managed - notMine),
      },
      hold,
      error: null,
    };
  }

  /**
   * The fenced write-ahead, before the state's: the intents of actions on shared resources are recorded
   * only under a lease this agent still holds, conditional on its epoch (agent/fleet/fence.ts). Those it
   * does not admit are held (`shard`); if the lease database cannot be written, nothing is acted on.
   */
  private async fenceStep(act: readonly Act[]): Promise<{
    act: Act[];
    hold: Hold[];
    ids: Map<string, string>;
    error: string | null;
  }> {
    const fence = this.deps.fence;
    const ids = new Map<string, string>();
    const shared = fence ? act.filter((a) => fence.covers(a.drift.kind)) : [];
    if (!fence || shared.length === 0) return { act: [...act], hold: [], ids, error: null };
    for (const a of shared) ids.set(a.drift.key, newActionId());
    let admitted: Set<string>;
    try {
      admitted = await fence.admit(shared.map((a) => ({ key: a.drift.key, action: ids.get(a.drift.key)! })));
    } catch (e) {
      const msg = errorMessage(e);
      this.deps.log.error({ err: msg }, 'fenced write-ahead failed: acting on nothing until it succeeds');
      return { act: [], hold: this.unwritable(act), ids: new Map(), error: msg };
    }
    for (const k of [...ids.keys()]) if (!admitted.has(k)) ids.delete(k);
    return {
      act: act.filter((a) => !fence.covers(a.drift.kind) || admitted.has(a.drift.key)),
      hold: shared
        .filter((a) => !admitted.has(a.drift.key))
        .map((a) => ({ drift: a.drift, reason: 'shard' })),
      ids,
      error: null,
    };
  }

  /** Fenced intents that got no outcome (never started: shutdown, or the state write-ahead failed) are closed. */
  private async closeFenced(
    fencedIds: ReadonlyMap<string, string>,
    outcomes: ReadonlyArray<{ action: ApplyAction }>,
  ): Promise<void> {
    const fence = this.deps.fence;
    if (!fence || fencedIds.size === 0) return;
    const done = new Set(outcomes.map((o) => o.action.resource.key));
    for (const [key, id] of fencedIds) {
      if (done.has(key)) continue;
      try {
        await fence.finish(id, 'not-started');
      } catch (e) {
        this.deps.log.warn(
          { err: errorMessage(e) },
          'a fenced intent that never started could not be closed',
        );
      }
    }
  }

  /**
   * Write-ahead: before the first action, the tokens taken, each action's attempt (counted as a failure,
   * with its backoff, until its outcome says otherwise) and one audit intent per action are durable.
   * Returns the intent ids and the pessimistic records, or the error that means: act on nothing.
   */
  private async writeAhead(
    act: readonly Act[],
    revision: Revision,
    base: PersistedState,
    records: CycleRecords,
    bucket: DecideOutput['bucket'],
    now: number,
    /** Action ids already given (the fenced write-ahead recorded them first). */
    given: ReadonlyMap<string, string> = new Map(),
  ): Promise<WriteAhead> {
    const { ids, pessimistic } = noWriteAhead();
    if (act.length === 0) return { ...noWriteAhead(), granted: 0 };
    const convCfg = this.convergenceConfig();
    // The records as written ahead: a new object (the given one is never written), as the store takes it.
    const ahead = records.copyObject();
    for (const a of act) {
      const step = trackConvergence(
        records.get(a.drift.key) ?? emptyRecord(),
        { kind: 'acted-failed' },
        convCfg,
        now,
        this.deps.random,
      );
      pessimistic.set(a.drift.key, step);
      ahead[a.drift.key] = step.record;
      ids.set(a.drift.key, given.get(a.drift.key) ?? newActionId());
    }
    const at = new Date(now).toISOString();
    const intents: AuditRecord[] = act.map((a) => ({
      at,
      revision: revision.sha,
      kind: a.drift.kind,
      name: a.drift.name,
      id: a.drift.id,
      patch: displayPatchOf(this.deps.kinds, a.drift.detected.resource, a.ops, a.drift.detected.observed),
      outcome: 'started',
      action: ids.get(a.drift.key)!,
      durationMs: 0,
      ...signerOf(revision),
    }));
    const { store } = this.deps;
    if (store.writeAhead) {
      // A shared backend: tokens, records and intents in one transaction that re-reads freeze and mode.
      let result: WriteAheadResult = { kind: 'written', granted: 0 };
      const error = await this.tryWrite(async () => {
        result = await store.writeAhead!({
          resources: ahead,
          keys: act.map((a) => a.drift.key),
          intents,
          initialMode: this.deps.initialMode,
          rateLimit: this.deps.guardrails.rateLimit,
          now,
        });
      });
      const r = result as WriteAheadResult;
      if (error !== null || r.kind === 'written')
        return { error, ids, pessimistic, granted: r.kind === 'written' ? r.granted : 0, blocked: null };
      return { error: null, ids, pessimistic, granted: 0, blocked: r };
    }
    const error =
      (await this.tryWrite(() => store.save({ ...base, bucket, resources: ahead }))) ??
      (await this.tryWrite(() => store.appendAudit(intents)));
    return { error, ids, pessimistic, granted: act.length, blocked: null };
  }

  /**
   * Shared backends: the fleet's freeze, mode, approvals, bucket and soak, read fresh at the start of
   * every cycle. If they cannot be read, the cycle detects with what it knew and acts on nothing.
   */
  private async refreshShared(
    state: PersistedState,
    sha: string,
  ): Promise<{ state: PersistedState; error: string | null }> {
    const { store } = this.deps;
    if (!store.refresh) return { state, error: null };
    let fresh = state;
    const error = await this.tryWrite(async () => {
      fresh = await store.refresh!(state, sha);
    });
    return { state: fresh, error };
  }

  /**
   * Rollout waves (fleet.rollout): before acting on a revision, ask whether this agent's wave is open.
   * Closed: every action is held `wave`. A halt (a check failing or a resource not converging in an open
   * wave): held `frozen`; the gate has frozen the fleet (`rollout_halted: …`) and `halt` is the freeze in
   * force, for the cycle to adopt. Unreachable: act on nothing.
   */
  private async gateWaves(
    decision: DecideOutput<CycleDrift>,
    sha: string,
    approved: boolean,
    now: number,
  ): Promise<{
    decision: DecideOutput<CycleDrift>;
    halt: { freeze: Freeze; froze: boolean } | null;
    error: string | null;
  }> {
    const { gate } = this.deps;
    if (!gate || decision.act.length === 0 || decision.freeze) return { decision, halt: null, error: null };
    let answer: GateAnswer = { act: false, wave: null, halt: null };
    const error = await this.tryWrite(async () => {
      answer = await gate(sha, { approved, now });
    });
    const a = answer as GateAnswer;
    if (error !== null || a.act) return { decision, halt: null, error };
    const reason: HoldReason = a.halt ? 'frozen' : 'wave';
    const held = decision.act.map((x) => ({ drift: x.drift, reason }));
    const halt = a.halt ? { freeze: a.halt.freeze, froze: a.halt.froze } : null;
    return { decision: { ...decision, act: [], hold: [...decision.hold, ...held] }, halt, error: null };
  }

  /** What the write-ahead admitted: all of it, the first `granted` (shared bucket), or nothing (held). */
  private admitted(decision: DecideOutput<CycleDrift>, ahead: WriteAhead): { act: Act[]; hold: Hold[] } {
    if (ahead.error !== null) return { act: [], hold: [...decision.hold, ...this.unwritable(decision.act)] };
    if (ahead.blocked) {
      const reason = ahead.blocked.reason;
      return { act: [], hold: [...decision.hold, ...decision.act.map((a) => ({ drift: a.drift, reason }))] };
    }
    const late = decision.act
      .slice(ahead.granted)
      .map((a) => ({ drift: a.drift, reason: 'rate-limit' as const }));
    return { act: decision.act.slice(0, ahead.granted), hold: [...decision.hold, ...late] };
  }

  /** The actions the write-ahead could not record: held, never applied. */
  private unwritable(act: readonly Act[]): Hold[] {
    return act.map((a) => ({ drift: a.drift, reason: 'state-unwritable' as const }));
  }

  /**
   * Apply what the guardrails allow, provider by provider, in decided order. Each outcome is audited
   * (fsynced) as soon as the provider reports it; if that write fails, no further action starts.
   */
  private async apply(
    act: readonly Act[],
    revision: Revision,
    ids: ReadonlyMap<string, string>,
    shouldStop: () => boolean,
  ): Promise<{ outcomes: Array<{ action: ApplyAction; outcome: ApplyOutcome }>; error: string | null }> {
    const { deps } = this;
    let error: string | null = null;
    const toAudit = (action: ApplyAction, outcome: ApplyOutcome, durationMs: number): AuditRecord => ({
      at: new Date(deps.clock()).toISOString(),
      revision: revision.sha,
      kind: action.resource.kind,
      name: action.resource.name,
      id: outcome.id,
      patch: displayPatchOf(deps.kinds, action.resource, action.ops, action.observed),
      outcome: outcome.outcome,
      action: ids.get(action.resource.key)!,
      ...(outcome.outcome === 'failed' ? { error: outcome.error } : {}),
      durationMs,
      ...signerOf(revision),
    });
    // A shared backend: a freeze or observe set through another agent stops this batch after the action
    // in flight (asked after each outcome; not knowing counts as halted).
    let halted = false;
    const { store } = deps;
    const outcomes = await this.applyGroups(
      act,
      () => error !== null || halted || shouldStop(),
      async (a, o, ms) => {
        error ??= await this.tryWrite(() => store.appendAudit([toAudit(a, o, ms)]));
        const fence = deps.fence;
        if (fence?.covers(a.resource.kind))
          error ??= await this.tryWrite(() => fence.finish(ids.get(a.resource.key)!, o.outcome));
        if (store.actingHalted && !halted) halted = await store.actingHalted().catch(() => true);
      },
    );
    return { outcomes, error };
  }

  /** Record each outcome in its resource's record (replacing the write-ahead's pessimistic one). */
  private record(
    outcomes: ReadonlyArray<{ action: ApplyAction; outcome: ApplyOutcome }>,
    records: Map<string, ResourceRecord>,
    pessimistic: ReadonlyMap<string, ReturnType<typeof trackConvergence>>,
  ): { applied: number; failed: number } {
    const { deps } = this;
    let applied = 0;
    let failed = 0;
    for (const { action, outcome } of outcomes) {
      const key = action.resource.key;
      const rec = records.get(key) ?? emptyRecord();
      const ok = outcome.outcome === 'applied';
      if (ok) applied++;
      else failed++;
      const step = ok
        ? trackConvergence(rec, { kind: 'acted-ok' }, this.convergenceConfig(), deps.clock(), deps.random)
        : pessimistic.get(key)!;
      const settleMs = deps.kinds.get(action.resource.kind)?.settleMs ?? 0;
      const at = deps.clock();
      records.set(
        key,
        ok
          ? {
              ...step.record,
              verifyPending: true,
              appliedAt: at,
              lastApplied: action.resource.desired,
              ...(settleMs > 0
                ? { nextAttemptAt: Math.max(step.record.nextAttemptAt ?? 0, at + settleMs) }
                : {}),
            }
          : step.record,
      );
      if (step.transition === 'stuck')
        deps.emit({ type: 'resource_stuck', key, id: outcome.id, attempts: step.record.attempts });
      if (!ok)
        deps.log.warn(
          { resource: key, id: outcome.id, code: outcome.code, error: outcome.error },
          'apply failed',
        );
      else deps.log.info({ resource: key, id: outcome.id, paths: opPaths(action.ops) }, 'applied');
    }
    return { applied, failed };
  }

  /** Release: resources in the state but no longer in Git are forgotten and left as they are. */
  private release(revision: Revision, records: Map<string, ResourceRecord>): number {
    // Revision keys are unique (agent/manifest.ts rejects a duplicate): when every record's key is in the
    // revision, nothing is released and no set of 100k keys is built (the steady state).
    let kept = 0;
    for (const r of revision.resources) if (records.has(r.key)) kept++;
    if (kept === records.size) return 0;
    const inRevision = new Set(revision.resources.map((r) => r.key));
    let released = 0;
    for (const key of records.keys()) {
      if (inRevision.has(key)) continue;
      records.delete(key);
      released++;
      this.deps.emit({ type: 'resource_released', key });
    }
    const { massDrift } = this.deps.guardrails;
    const before = inRevision.size + released;
    if (
      released > massDrift.maxDrifted ||
      (before >= massDrift.minManaged && released * 100 > massDrift.maxDriftedPercent * before)
    )
      this.deps.emit({ type: 'mass_release', sha: revision.sha, released, managedBefore: before });
    return released;
  }

  /** Report: the cycle's figures and drift, built in one place. */
  private report(c: {
    started: number;
    revision: Revision;
    mode: CycleReport['mode'];
    frozen: boolean;
    soaking: boolean;
    detection: Awaited<ReturnType<typeof detect>>;
    records: ReadonlyMap<string, ResourceRecord>;
    hold: readonly Hold[];
    outcomes: ReadonlyArray<{ action: ApplyAction; outcome: ApplyOutcome }>;
    counts: { applied: number; failed: number };
    convergedAfterSeconds: number[];
    stateError: string | null;
    released: number;
    window: WindowVerdict;
  }): CycleReport {
    const held: Partial<Record<HoldReason, number>> = {};
    for (const h of c.hold) held[h.reason] = (held[h.reason] ?? 0) + 1;
    const holdByKey = new Map(c.hold.map((h) => [h.drift.key, h.reason]));
    return {
      startedAt: new Date(c.started).toISOString(),
      durationMs: this.deps.clock() - c.started,
      revision: c.revision.sha,
      mode: c.mode,
      frozen: c.frozen,
      soaking: c.soaking,
      managed: c.detection.managed,
      drifted: c.detection.drift.length,
      observeErrors: c.detection.errors.length,
      applied: c.counts.applied,
      failed: c.counts.failed,
      held,
      drift: c.detection.drift.map((d) => {
        const rec = c.records.get(d.resource.key) ?? emptyRecord();
        const h = holdByKey.get(d.resource.key) ?? null;
        const st: DriftState = rec.stuck
          ? 'stuck'
          : h === 'backoff'
            ? 'backoff'
            : h === 'report-only'
              ? 'report-only'
              : 'drifted';
        return {
          kind: d.resource.kind,
          name: d.resource.name,
          id: d.id,
          patch: displayPatchOf(this.deps.kinds, d.resource, d.patch, d.observed),
          firstSeen: iso(rec.firstSeen),
          attempts: rec.attempts,
          state: st,
          held: h,
        };
      }),
      outcomes: c.outcomes.map((o) => ({ kind: o.action.resource.kind, outcome: o.outcome.outcome })),
      convergedAfterSeconds: c.convergedAfterSeconds,
      stuck: countStuck(c.records),
      errors: c.detection.errors.map((e) => ({
        kind: e.resource.kind,
        name: e.resource.name,
        id: e.id,
        code: e.code,
        error: e.error,
      })),
      stateError: c.stateError,
      released: c.released,
      window: c.window,
    };
  }

  /** Runs a state or audit write; returns null when it is durable, else why not (never throws). */
  private async tryWrite(write: () => Promise<void>): Promise<string | null> {
    try {
      await write();
      return null;
    } catch (e) {
      const msg = errorMessage(e);
      this.deps.log.error({ err: msg }, 'state write failed: acting on nothing until it succeeds');
      return msg;
    }
  }

  private convergenceConfig() {
    const cfg = this.deps.guardrails;
    return { alertAfterCycles: cfg.nonConvergence.alertAfterCycles, backoff: cfg.backoff };
  }

  /**
   * Applies the decided actions, grouped by provider, preserving order; starts no new one on shutdown.
   * `audit` is awaited for every outcome as soon as it is known (once per outcome, whichever path reports it).
   */
  private async applyGroups(
    acts: readonly Act[],
    shouldStop: () => boolean,
    audit: (action: ApplyAction, outcome: ApplyOutcome, durationMs: number) => Promise<void>,
  ): Promise<Array<{ action: ApplyAction; outcome: ApplyOutcome }>> {
    const groups = new Map<Provider, ApplyAction[]>();
    for (const a of acts) {
      const d = a.drift.detected;
      const provider = providerFor(this.deps.kinds.get(d.resource.kind)!, this.deps.providers);
      const g = groups.get(provider) ?? [];
      g.push({ resource: d.resource, ops: a.ops, observed: d.observed });
      groups.set(provider, g);
    }
    const out: Array<{ action: ApplyAction; outcome: ApplyOutcome }> = [];
    for (const [provider, actions] of groups) {
      if (shouldStop()) break;
      const byResource = new Map(actions.map((a) => [a.resource.key, a]));
      const audited = new Set<string>();
      const t0 = this.deps.clock();
      const record = async (o: ApplyOutcome, fallbackMs: number): Promise<void> => {
        const action = byResource.get(o.key);
        if (!action || audited.has(o.key)) return;
        audited.add(o.key);
        await audit(action, o, o.durationMs ?? fallbackMs);
      };
      const fence = this.deps.fence;
      const reported: ApplyOutcome[] = [];
      let outcomes: ApplyOutcome[];
      let threw = false;
      try {
        outcomes = await provider.apply(actions, {
          shouldStop,
          onOutcome: (o) => {
            reported.push(o);
            return record(o, this.deps.clock() - t0);
          },
          ...(fence ? { signal: (key: string) => fence.signalFor(key) } : {}),
        });
      } catch (e) {
        // A provider bug: it threw instead of reporting. Its unreported actions are failed (their write-ahead,
        // the attempt and its backoff, stands), audited as such, and nothing else starts this cycle.
        threw = true;
        outcomes = [...reported, ...thrownOutcomes(provider.name, actions, reported, e)];
        this.deps.log.error(
          { provider: provider.name, err: errorMessage(e) },
          'a provider threw mid-apply: its unreported actions are recorded as failed, nothing more starts this cycle',
        );
      }
      const per = outcomes.length > 0 ? Math.round((this.deps.clock() - t0) / outcomes.length) : 0;
      for (const o of outcomes) {
        const action = byResource.get(o.key);
        if (!action) continue;
        await record(o, per); // providers that did not report as they went
        out.push({ action, outcome: o });
      }
      if (threw) break;
    }
    return out;
  }
}

/** The write-ahead's outcome: an error (act on nothing), a block (frozen/observe now), or how many may act. */
interface WriteAhead {
  error: string | null;
  ids: Map<string, string>;
  pessimistic: Map<string, ReturnType<typeof trackConvergence>>;
  granted: number;
  blocked: Extract<WriteAheadResult, { kind: 'blocked' }> | null;
}

/** The outcomes of the actions a provider that threw never reported: failed, with why. */
function thrownOutcomes(
  provider: string,
  actions: readonly ApplyAction[],
  reported: readonly ApplyOutcome[],
  e: unknown,
): ApplyOutcome[] {
  const seen = new Set(reported.map((o) => o.key));
  const error = `the ${provider} provider failed mid-apply (${errorMessage(e)}); whether this action took effect is unknown: the next cycle observes it afresh`;
  return actions
    .filter((a) => !seen.has(a.resource.key))
    .map((a) => ({ key: a.resource.key, id: null, outcome: 'failed', code: 'APPLY_THREW', error }));
}

/** How many records are stuck, without an array of every record. */
function countStuck(records: ReadonlyMap<string, ResourceRecord>): number {
  let n = 0;
  for (const r of records.values()) if (r.stuck) n++;
  return n;
}

const noWriteAhead = (): WriteAhead => ({
  error: null,
  ids: new Map(),
  pessimistic: new Map(),
  granted: 0,
  blocked: null,
});

/** A fresh action id (audit `action`, fenced intents). */
function newActionId(): string {
  return nodeCrypto().randomBytes(8).toString('hex');
}

/** The audit records' `signer` (SPEC §10): only when the revision verified. */
function signerOf(revision: Revision): { signer?: string } {
  return revision.signer ? { signer: revision.signer } : {};
}
