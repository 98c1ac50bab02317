/**
 * Mass-drift halt (SPEC §2.2).
 *
 * Protects against a poisoned or broken desired state — a bad merge, a wrong
 * default, a template that renders every resource differently — being rolled
 * out fleet-wide. When more resources would change than an operator expects,
 * the agent must stop before acting on any of them; the caller turns a trip
 * into a persisted freeze and an alert.
 *
 * Pure: counts in, verdict out.
 */
import type { GuardrailConfig } from './types.js';

export type MassDriftVerdict = { trip: false } | { trip: true; reason: string };

export interface MassDriftInput {
  /** Resources that have at least one field to revert (report-only drift does not count). */
  wouldChange: number;
  /** Resources managed by the revision. */
  managed: number;
  config: GuardrailConfig['massDrift'];
}

/**
 * Trips when `wouldChange > maxDrifted`, or — only once at least `minManaged`
 * resources are managed — when `wouldChange` is more than `maxDriftedPercent`
 * of `managed`. Exactly at a threshold does not trip. The percentage is
 * compared as `wouldChange·100 > percent·managed`, so there is no float
 * rounding at the edge.
 */
export function checkMassDrift(input: MassDriftInput): MassDriftVerdict {
  const { wouldChange, managed, config } = input;
  if (wouldChange > config.maxDrifted) {
    return {
      trip: true,
      reason: `${wouldChange} of ${managed} managed resources would change; limit ${config.maxDrifted}`,
    };
  }
  const percentApplies = managed >= config.minManaged && managed > 0;
  if (percentApplies && wouldChange * 100 > config.maxDriftedPercent * managed) {
    const shown = formatPercent(wouldChange, managed, config.maxDriftedPercent);
    return {
      trip: true,
      reason: `${wouldChange} of ${managed} managed resources (${shown}%) would change; limit ${config.maxDriftedPercent}%`,
    };
  }
  return { trip: false };
}

/**
 * `part/whole` as a percentage with as few decimals as needed (at most 3) so
 * that a value above the limit never prints as equal to it ("30.1%", not "30%").
 */
export function formatPercent(part: number, whole: number, limit: number): string {
  const exact = (part * 100) / whole;
  for (let digits = 0; digits < 3; digits++) {
    const shown = Number(exact.toFixed(digits));
    if (shown === exact || shown !== limit) return String(shown);
  }
  return String(Number(exact.toFixed(3)));
}
