/**
 * One reconcile cycle — the contract everything else builds around.
 *
 *   cycle(revision) reads observed state FRESH, diffs it on owned fields,
 *   lets the guardrails decide (a pure function), applies what they allow,
 *   and records the outcome: state, audit, events — in one place, at the end.
 *
 * A cycle never throws for a resource's failure: observe errors hold that
 * resource (never "missing"), apply errors count towards its backoff. It
 * throws only when the state cannot be persisted, and then nothing after the
 * failed write is considered done.
 *
 * `shouldStop()` is checked between actions: on shutdown the action in flight
 * finishes, no new one starts, and the state is still recorded.
 */
import type { Operation } from 'fast-json-patch';
import type { DecideDrift, HoldReason } from '../policies/decide.js';
import { decide } from '../policies/decide.js';
import { emptyRecord, markDrifted, trackConvergence } from '../policies/non-convergence.js';
import { soakStep } from '../policies/soak.js';
import type { GuardrailConfig, Mode, ResourceRecord } from '../policies/types.js';
import { providerFor } from '../providers/registry.js';
import type { ApplyAction, ApplyOutcome, KindDefinition, OwnedDoc, Provider } from '../providers/types.js';
import { type DetectedDrift, detect } from './detect.js';
import type { EventSink } from './events.js';
import type { Logger } from './log.js';
import { type DisplayOp, displayPatchOf, opPaths } from './patch-view.js';
import type { Revision } from './source/source.js';
import type { AuditRecord, PersistedState, StateStore } from './state/types.js';

export type DriftState = 'drifted' | 'backoff' | 'report-only' | 'stuck' | 'held';

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
}

/** `freeze.by` of a freeze set by the mass-drift halt. */
export const MASS_DRIFT_ACTOR = 'steward (mass-drift halt)';

const sameDoc = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

export class Reconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  /** Runs one cycle on `revision`, given the state loaded before; returns the new state and a report. */
  async cycle(
    revision: Revision,
    state: PersistedState,
    shouldStop: () => boolean,
  ): Promise<{ state: PersistedState; report: CycleReport }> {
    const { deps } = this;
    const started = deps.clock();
    const mode = state.mode ?? deps.initialMode;
    const records = new Map<string, ResourceRecord>(Object.entries(state.resources));
    const cfg = deps.guardrails;
    const convCfg = { alertAfterCycles: cfg.nonConvergence.alertAfterCycles, backoff: cfg.backoff };

    // 1. Detect (fresh observe + owned-field diff).
    const detection = await detect(
      revision.resources,
      deps.kinds,
      deps.providers,
      (k) => records.get(k)?.lastApplied as OwnedDoc | undefined,
    );
    const now = deps.clock();

    // 2. Fold the observation into each record BEFORE deciding, so a backoff it schedules holds the resource now.
    const convergedAfterSeconds: number[] = [];
    for (const r of detection.converged) {
      const rec = records.get(r.key) ?? emptyRecord();
      // Already converged on this very desired state: nothing to record (the common case; keeps big fleets cheap).
      if (
        rec.lastApplied === r.desired &&
        rec.firstSeen === undefined &&
        !rec.verifyPending &&
        rec.attempts === 0 &&
        !rec.stuck
      )
        continue;
      if (rec.firstSeen !== undefined) convergedAfterSeconds.push(Math.max(0, (now - rec.firstSeen) / 1000));
      const step = trackConvergence(rec, { kind: 'converged' }, convCfg, now, deps.random);
      // Converged on fields Git sets: those fields are owned from now on (three-way base).
      records.set(r.key, { ...step.record, verifyPending: false, lastApplied: r.desired });
      if (step.transition === 'recovered') deps.emit({ type: 'resource_recovered', key: r.key, id: null });
    }
    for (const d of detection.drift) {
      const rec = records.get(d.resource.key) ?? emptyRecord();
      // Still drifted after a successful apply of the SAME desired state: it did not stick (another actor
      // fights us, or the provider ignored it). Drift towards a changed desired state is new drift.
      const settleMs = deps.kinds.get(d.resource.kind)?.settleMs ?? 0;
      const settling = rec.verifyPending && rec.appliedAt !== undefined && now - rec.appliedAt < settleMs;
      if (settling) {
        // Eventually consistent APIs: right after an apply the old value may still be read back. Within the
        // kind's settle window that is not "did not stick"; the resource is held (nextAttemptAt) until then.
        records.set(d.resource.key, markDrifted(rec, now));
      } else if (rec.verifyPending && sameDoc(rec.lastApplied, d.resource.desired)) {
        const step = trackConvergence(rec, { kind: 'still-drifted-after-act' }, convCfg, now, deps.random);
        records.set(d.resource.key, { ...step.record, verifyPending: false });
        if (step.transition === 'stuck')
          deps.emit({
            type: 'resource_stuck',
            key: d.resource.key,
            id: d.id,
            attempts: step.record.attempts,
          });
      } else records.set(d.resource.key, markDrifted(rec, now));
    }

    // 3. Decide (pure).
    const soak = soakStep(state.soak, revision.sha, cfg.soak.observeCycles);
    const byKey = new Map<string, DetectedDrift>(detection.drift.map((d) => [d.resource.key, d]));
    const decideDrift: DecideDrift[] = detection.drift.map((d) => ({
      key: d.resource.key,
      kind: d.resource.kind,
      name: d.resource.name,
      id: d.id,
      patch: d.patch,
      resourcePolicy: d.resource.onDrift,
      disruptive: deps.kinds.get(d.resource.kind)?.disruptive ?? [],
    }));
    const decision = decide({
      now,
      mode,
      freeze: state.freeze,
      revision: {
        sha: revision.sha,
        approved: state.approvals.includes(revision.sha),
        soaking: soak.soaking,
      },
      managed: detection.managed,
      drift: decideDrift,
      records,
      bucket: state.bucket,
      config: cfg,
    });
    let freeze = state.freeze;
    if (decision.freeze) {
      freeze = { reason: decision.freeze.reason, by: MASS_DRIFT_ACTOR, since: now };
      deps.emit({ type: 'mass_drift_frozen', reason: decision.freeze.reason, sha: revision.sha });
      // Persist the freeze before anything else happens: it must survive a crash right after.
      await deps.store.save({ ...state, freeze });
    }

    // 4. Apply what the guardrails allow, provider by provider, in decided order. Each outcome is
    //    audited (fsynced) as soon as the provider reports it, so a crash loses at most the one in flight.
    const toAudit = (action: ApplyAction, outcome: ApplyOutcome, durationMs: number): AuditRecord => ({
      at: new Date(deps.clock()).toISOString(),
      revision: revision.sha,
      kind: action.resource.kind,
      name: action.resource.name,
      id: outcome.id,
      patch: displayPatchOf(deps.kinds, action.resource, action.ops, action.observed),
      outcome: outcome.outcome,
      ...(outcome.outcome === 'failed' ? { error: outcome.error } : {}),
      durationMs,
    });
    const outcomes = await this.apply(decision.act, byKey, shouldStop, (a, o, ms) =>
      deps.store.appendAudit([toAudit(a, o, ms)]),
    );
    let applied = 0;
    let failed = 0;
    for (const { action, outcome } of outcomes) {
      const key = action.resource.key;
      const rec = records.get(key) ?? emptyRecord();
      const ok = outcome.outcome === 'applied';
      if (ok) applied++;
      else failed++;
      const step = trackConvergence(
        rec,
        { kind: ok ? 'acted-ok' : 'acted-failed' },
        convCfg,
        deps.clock(),
        deps.random,
      );
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

    // 5. Released resources: in the state, no longer in Git. Left as they are.
    const inRevision = new Set(revision.resources.map((r) => r.key));
    for (const key of records.keys()) {
      if (inRevision.has(key)) continue;
      records.delete(key);
      deps.emit({ type: 'resource_released', key });
    }

    // 6. Record the state (the audit is already written).
    const next: PersistedState = {
      ...state,
      freeze,
      soak: soak.state,
      bucket: decision.bucket,
      revision: {
        sha: revision.sha,
        acceptedAt: state.revision?.sha === revision.sha ? state.revision.acceptedAt : revision.fetchedAt,
      },
      resources: Object.fromEntries(records),
    };
    await deps.store.save(next);

    const held: Partial<Record<HoldReason, number>> = {};
    for (const h of decision.hold) held[h.reason] = (held[h.reason] ?? 0) + 1;
    const holdByKey = new Map(decision.hold.map((h) => [h.drift.key, h.reason]));
    const report: CycleReport = {
      startedAt: new Date(started).toISOString(),
      durationMs: deps.clock() - started,
      revision: revision.sha,
      mode,
      frozen: freeze !== null,
      soaking: soak.soaking,
      managed: detection.managed,
      drifted: detection.drift.length,
      observeErrors: detection.errors.length,
      applied,
      failed,
      held,
      drift: detection.drift.map((d) => {
        const rec = records.get(d.resource.key) ?? emptyRecord();
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
          patch: displayPatchOf(deps.kinds, d.resource, d.patch, d.observed),
          firstSeen: iso(rec.firstSeen),
          attempts: rec.attempts,
          state: st,
          held: h,
        };
      }),
      outcomes: outcomes.map((o) => ({ kind: o.action.resource.kind, outcome: o.outcome.outcome })),
      convergedAfterSeconds,
      stuck: [...records.values()].filter((r) => r.stuck).length,
      errors: detection.errors.map((e) => ({
        kind: e.resource.kind,
        name: e.resource.name,
        id: e.id,
        code: e.code,
        error: e.error,
      })),
    };
    return { state: next, report };
  }

  /**
   * Applies the decided actions, grouped by provider, preserving order; starts no new one on shutdown.
   * `audit` is awaited for every outcome as soon as it is known (once per outcome, whichever path reports it).
   */
  private async apply(
    acts: ReadonlyArray<{ drift: { key: string }; ops: Operation[] }>,
    byKey: ReadonlyMap<string, DetectedDrift>,
    shouldStop: () => boolean,
    audit: (action: ApplyAction, outcome: ApplyOutcome, durationMs: number) => Promise<void>,
  ): Promise<Array<{ action: ApplyAction; outcome: ApplyOutcome }>> {
    const groups = new Map<Provider, ApplyAction[]>();
    for (const a of acts) {
      const d = byKey.get(a.drift.key)!;
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
      const outcomes = await provider.apply(actions, {
        shouldStop,
        onOutcome: (o) => record(o, this.deps.clock() - t0),
      });
      const per = outcomes.length > 0 ? Math.round((this.deps.clock() - t0) / outcomes.length) : 0;
      for (const o of outcomes) {
        const action = byResource.get(o.key);
        if (!action) continue;
        await record(o, per); // providers that did not report as they went
        out.push({ action, outcome: o });
      }
    }
    return out;
  }
}
