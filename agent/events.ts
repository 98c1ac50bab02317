/**
 * Things the agent tells the outside world about: alerts, metrics and logs all
 * subscribe here. Emitted on transitions only, never every cycle.
 */
import type { SourceProblem } from '../core/errors.js';
import type { HealthCheckResult } from './health/types.js';

export type AgentEvent =
  | { type: 'revision_accepted'; sha: string; resources: number }
  /** `reason: 'signature'`: its signatures did not verify under source.verify (SPEC §10). */
  | { type: 'revision_rejected'; sha: string; problems: SourceProblem[]; reason?: 'signature' }
  | { type: 'source_unreachable'; error: string; code: string }
  | { type: 'source_recovered'; sha: string }
  /** `hint`: what to run to let the change through (agent/first-start.ts). */
  | { type: 'mass_drift_frozen'; reason: string; sha: string; hint?: string }
  /** `until`: when it ends by itself (ms), or null/absent for a freeze only an unfreeze ends. */
  | { type: 'frozen'; reason: string; by: string; until?: number | null }
  /** `by: 'expiry'`: the freeze's `until` passed (nothing is approved by it). */
  | { type: 'unfrozen'; by: string; approveRevision: string | null }
  /** An operator opened the change windows until `until` (ms); audited. */
  | { type: 'window_override'; reason: string; by: string; until: number }
  | { type: 'window_override_ended'; by: 'expiry' }
  | { type: 'mode_changed'; mode: 'observe' | 'enforce'; by: string }
  | { type: 'resource_stuck'; key: string; id: string | null; attempts: number }
  | { type: 'resource_recovered'; key: string; id: string | null }
  | { type: 'resource_released'; key: string }
  /** A revision stopped managing more resources than the mass-drift limits allow at once (they are left as they are). */
  | { type: 'mass_release'; sha: string; released: number; managedBefore: number }
  /** The approval of `sha` is spent: the drift it approved converged. */
  | { type: 'approval_spent'; sha: string; resources: number }
  /** A state or audit write failed: the agent acts on nothing until one succeeds. */
  | { type: 'state_unwritable'; error: string }
  | { type: 'state_recovered' }
  /** Some resources could not be observed (they are held, never treated as missing). */
  | { type: 'observe_failing'; count: number; codes: string[] }
  | { type: 'observe_recovered' }
  /** A health check (agent config `health:`) started failing: its first result, or a change from passing. */
  | { type: 'health_failing'; check: string; kind: HealthCheckResult['kind']; detail: string }
  | { type: 'health_recovered'; check: string; kind: HealthCheckResult['kind']; detail: string };

export type EventSink = (event: AgentEvent) => void;
