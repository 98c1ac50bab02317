/**
 * Non-convergence tracking (SPEC §2.6 and §2.9): the per-resource record after
 * each cycle.
 *
 * Protects against two quiet failure modes: a resource the agent keeps
 * "fixing" while another actor (an autoscaler, a human, a second controller)
 * keeps changing it back — an endless apply fight — and an apply that keeps
 * failing. Both count towards backoff (so the fight slows down) and, after
 * `alertAfterCycles` such cycles, raise exactly one `stuck` transition; the
 * first convergence afterwards raises exactly one `recovered`.
 *
 * How the caller reports one resource's cycle:
 *
 *  - observation (before deciding):
 *      not drifted                         → `converged`
 *      drifted, and the previous cycle applied to it successfully
 *                                          → `still-drifted-after-act` (the apply did not stick)
 *      drifted otherwise                   → `markDrifted` (sets `firstSeen` once)
 *  - outcome (after applying), for resources that are drifted:
 *      apply failed                        → `acted-failed`
 *      apply succeeded                     → `acted-ok`
 *      held (cap, freeze, observe, soak, report policy, backoff, rate limit)
 *                                          → `drifted-not-acted`
 *
 * `acted-ok` changes no counter: an apply that reported success has not been
 * verified yet (providers can be eventually consistent). Only the next fresh
 * observation decides — `converged` resets everything (success resets the
 * backoff), `still-drifted-after-act` counts it as an attempt that did not
 * stick. The caller must therefore remember which keys it applied
 * successfully in the previous cycle (e.g. in its per-cycle state; persisting
 * it avoids one extra, un-backed-off apply after a restart) and must report
 * the observation BEFORE calling `decide`, so the backoff it schedules holds
 * the resource in that same cycle.
 */
import { backoffDelay } from './backoff.js';
import type { GuardrailConfig, ResourceRecord } from './types.js';

export type ConvergenceEvent =
  | { kind: 'converged' }
  | { kind: 'acted-failed' }
  | { kind: 'acted-ok' }
  | { kind: 'still-drifted-after-act' }
  | { kind: 'drifted-not-acted' };

export interface ConvergenceConfig {
  alertAfterCycles: number;
  backoff: GuardrailConfig['backoff'];
}

export interface ConvergenceStep {
  record: ResourceRecord;
  /** `stuck` once when the alert threshold is reached; `recovered` once on convergence after it. */
  transition: 'stuck' | 'recovered' | null;
}

/** A record for a resource the agent has no memory of yet. */
export function emptyRecord(): ResourceRecord {
  return { attempts: 0, cyclesActedDrifted: 0, stuck: false };
}

/** Records that the resource is drifted at `now`: sets `firstSeen` if unset, changes nothing else. */
export function markDrifted(record: Readonly<ResourceRecord>, now: number): ResourceRecord {
  return record.firstSeen === undefined ? { ...record, firstSeen: now } : { ...record };
}

/**
 * The record after one event. Never mutates `record`. Every event except
 * `converged` implies drift, so it also sets `firstSeen` if unset.
 */
export function trackConvergence(
  record: Readonly<ResourceRecord>,
  event: ConvergenceEvent,
  config: ConvergenceConfig,
  now: number,
  random: () => number,
): ConvergenceStep {
  switch (event.kind) {
    case 'converged':
      return converge(record);
    case 'acted-failed':
    case 'still-drifted-after-act':
      return countUnsuccessfulAttempt(markDrifted(record, now), config, now, random);
    case 'acted-ok':
    case 'drifted-not-acted':
      return { record: markDrifted(record, now), transition: null };
  }
}

/** Converged: reset attempts, backoff, counters and `firstSeen`; close an open stuck alert. */
function converge(record: Readonly<ResourceRecord>): ConvergenceStep {
  const { firstSeen: _firstSeen, nextAttemptAt: _nextAttemptAt, ...rest } = record;
  const next: ResourceRecord = { ...rest, attempts: 0, cyclesActedDrifted: 0, stuck: false };
  return { record: next, transition: record.stuck ? 'recovered' : null };
}

/** An apply that failed or did not stick: one more attempt, backoff scheduled, maybe stuck. */
function countUnsuccessfulAttempt(
  record: ResourceRecord,
  config: ConvergenceConfig,
  now: number,
  random: () => number,
): ConvergenceStep {
  const attempts = record.attempts + 1;
  const cyclesActedDrifted = record.cyclesActedDrifted + 1;
  const becomesStuck = !record.stuck && cyclesActedDrifted >= config.alertAfterCycles;
  const next: ResourceRecord = {
    ...record,
    attempts,
    cyclesActedDrifted,
    nextAttemptAt: now + backoffDelay(attempts, config.backoff, random),
    stuck: record.stuck || becomesStuck,
  };
  return { record: next, transition: becomesStuck ? 'stuck' : null };
}
