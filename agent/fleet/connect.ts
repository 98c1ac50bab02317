/**
 * Joins the fleet at start: with the postgres backend, registers this agent
 * and sends a heartbeat after every cycle, on a health check's transition and
 * every third of the liveness limit (so a long cycle does not look like a
 * dead agent to the rollout gate) — one at a time (agent/fleet/beats.ts);
 * with the files backend the fleet is this agent alone. Returns what
 * `GET /v1/fleet` reads, and `close` to stop the beats before the store.
 */
import { errorMessage } from '../../core/errors.js';
import type { Agent } from '../agent.js';
import type { Config } from '../config.js';
import type { HealthSource } from '../health/types.js';
import type { Logger } from '../log.js';
import { PgStateStore } from '../state/pg-store.js';
import type { StateStore } from '../state/types.js';
import { aliveLimitMs, type FleetSource, PgFleetRegistry, sourceKey } from './registry.js';
import { serialBeats } from './beats.js';
import { heartbeatOf, selfFleet } from './view.js';

export type JoinedFleet = FleetSource & { close(): Promise<void> };

export async function connectFleet(
  config: Config,
  agent: Agent,
  store: StateStore,
  log: Logger,
  health?: HealthSource,
): Promise<JoinedFleet> {
  if (!(store instanceof PgStateStore)) {
    if (config.fleet.rollout || config.fleet.massDrift)
      log.warn('fleet.rollout and fleet.massDrift need state.backend: postgres; with files they do nothing');
    return { ...selfFleet(agent, config.agent, health), close: async () => undefined };
  }
  const aliveMs = aliveLimitMs(config);
  const registry = new PgFleetRegistry(
    store.pool,
    { ...config.agent, source: sourceKey(config.source) },
    aliveMs,
    config.fleet.rollout,
  );
  await registry.register();
  let failing = false;
  let changedAt: number | null = null;
  const beats = serialBeats(() =>
    registry.heartbeat(heartbeatOf(agent, health, changedAt)).then(
      () => {
        failing = false;
      },
      (e) => {
        // The cycle itself reports an unreachable database (state_unwritable); say it here once.
        if (!failing) log.warn({ err: errorMessage(e) }, 'fleet heartbeat failed');
        failing = true;
      },
    ),
  );
  const beat = () => beats.beat();
  const timer = setInterval(beat, Math.max(1_000, Math.floor(aliveMs / 3)));
  timer.unref();
  // After every cycle; and at once when a health check turns failing or passing, so that the rollout
  // gate of the next cycle anywhere in the fleet sees it (not only after this agent's own next cycle).
  // A cycle that changed something checks health first: results taken before the change describe the
  // service as it was, and would halt (or pass) the new revision's wave on the old revision's health.
  // Until the fresh results are in, every heartbeat says its health is not current (`changedAt`).
  agent.onCycle((r) => {
    const changed = r.applied + r.failed > 0; // a failed action may have changed part of it
    if (changed) changedAt = Date.now();
    if (changed && health) void health.check({ fresh: true }).then(beat, beat);
    else beat();
  });
  const lastOk = new Map<string, boolean>();
  agent.onHealthResult((r) => {
    if (lastOk.get(r.name) === r.ok) return;
    lastOk.set(r.name, r.ok);
    beat();
  });
  return {
    view: () => registry.view(),
    close: async () => {
      clearInterval(timer);
      await beats.close();
    },
  };
}
