/**
 * The fleet as this agent alone sees it (the files backend: no shared
 * state, so the fleet is this agent), and the heartbeat it reports to a
 * shared one — both built from the agent's own figures.
 */
import type { Agent } from '../agent.js';
import type { HealthSource } from '../health/types.js';
import { type FleetSource, type Heartbeat, NO_CHECKS } from './registry.js';
import type { FleetView } from './types.js';

export interface SelfIdentity {
  id: string;
  labels: Readonly<Record<string, string>>;
}

/**
 * This agent's heartbeat: what it acts on, what it sees, how healthy it is. `changedAt`: when its last
 * cycle that changed something ended (ms, null: none yet) — results of check runs that started before
 * it are not current, nor is a report with a check still pending.
 */
export function heartbeatOf(agent: Agent, health?: HealthSource, changedAt: number | null = null): Heartbeat {
  const c = agent.lastCycle;
  const report = health?.latest() ?? NO_CHECKS;
  return {
    revision: c?.revision ?? agent.source.current?.sha ?? null,
    lastCycleAt: c ? Date.parse(c.startedAt) : null,
    drifted: c?.drifted ?? 0,
    converged: c?.drift.every((d) => d.state === 'report-only') ?? false,
    stuck: c?.stuck ?? 0,
    frozen: agent.currentState.freeze !== null,
    health: report,
    // A check with no result yet (just started) is not current either: its `ok: false` is no verdict.
    healthCurrent:
      (report.pending?.length ?? 0) === 0 &&
      (changedAt === null || report.checks.every((r) => r.at - r.durationMs >= changedAt)),
  };
}

/** `GET /v1/fleet` with the files backend: this agent only. */
export function selfFleet(agent: Agent, self: SelfIdentity, health?: HealthSource): FleetSource {
  return {
    view: async (): Promise<FleetView> => {
      const h = heartbeatOf(agent, health);
      return {
        backend: 'files',
        self: self.id,
        agents: [
          {
            id: self.id,
            labels: { ...self.labels },
            revision: h.revision,
            wave: null,
            healthy: h.health.ok,
            health: h.health.checks,
            lastCycleAt: h.lastCycleAt === null ? null : new Date(h.lastCycleAt).toISOString(),
            lastSeenAt: new Date().toISOString(),
            alive: true,
            frozen: h.frozen,
            drifted: h.drifted,
          },
        ],
        rollout: null,
      };
    },
  };
}
