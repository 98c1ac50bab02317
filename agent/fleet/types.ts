/**
 * The fleet as `GET /v1/fleet` shows it (SPEC §11) and `steward fleet` and the
 * dashboard render it. With the files backend the fleet is this agent alone.
 */
import type { HealthCheckResult } from '../health/types.js';

export interface FleetAgentView {
  id: string;
  labels: Record<string, string>;
  /** The revision this agent is acting on (null before its first good revision). */
  revision: string | null;
  /** Its wave for the rollout in progress (0-based), null when no rollout is in progress. */
  wave: number | null;
  healthy: boolean;
  health: HealthCheckResult[];
  lastCycleAt: string | null;
  lastSeenAt: string;
  /** False once its heartbeat is older than the liveness limit. */
  alive: boolean;
  frozen: boolean;
  drifted: number;
}

export interface FleetWaveView {
  index: number;
  /** The agent ids in this wave, in rollout order. */
  agents: string[];
  state: 'waiting' | 'open' | 'baking' | 'done' | 'halted';
  /** When it opened / when its bake ends (ISO), null while not known. */
  openedAt: string | null;
  bakeUntil: string | null;
}

export interface FleetView {
  backend: 'files' | 'postgres';
  self: string;
  agents: FleetAgentView[];
  rollout: {
    revision: string;
    waves: FleetWaveView[];
    halted: { at: string; reason: string; agents: string[]; checks: string[] } | null;
  } | null;
}
