/**
 * Things the agent tells the outside world about: alerts, metrics and logs all
 * subscribe here. Emitted on transitions only, never every cycle.
 */
import type { SourceProblem } from './errors.js';

export type AgentEvent =
  | { type: 'revision_accepted'; sha: string; resources: number }
  | { type: 'revision_rejected'; sha: string; problems: SourceProblem[] }
  | { type: 'source_unreachable'; error: string; code: string }
  | { type: 'source_recovered'; sha: string }
  | { type: 'mass_drift_frozen'; reason: string; sha: string }
  | { type: 'frozen'; reason: string; by: string }
  | { type: 'unfrozen'; by: string; approveRevision: string | null }
  | { type: 'mode_changed'; mode: 'observe' | 'enforce'; by: string }
  | { type: 'resource_stuck'; key: string; id: string | null; attempts: number }
  | { type: 'resource_recovered'; key: string; id: string | null }
  | { type: 'resource_released'; key: string };

export type EventSink = (event: AgentEvent) => void;
