/**
 * Joins the fleet at start: with the postgres backend, registers this agent
 * and sends a heartbeat after every cycle; with the files backend the fleet
 * is this agent alone. Returns what `GET /v1/fleet` reads.
 */
import { errorMessage } from '../../core/errors.js';
import type { Agent } from '../agent.js';
import type { Config } from '../config.js';
import type { HealthSource } from '../health/types.js';
import type { Logger } from '../log.js';
import { PgStateStore } from '../state/pg-store.js';
import type { StateStore } from '../state/types.js';
import { aliveLimitMs, type FleetSource, PgFleetRegistry } from './registry.js';
import { heartbeatOf, selfFleet } from './view.js';

export async function connectFleet(
  config: Config,
  agent: Agent,
  store: StateStore,
  log: Logger,
  health?: HealthSource,
): Promise<FleetSource> {
  if (!(store instanceof PgStateStore)) {
    if (config.fleet.rollout || config.fleet.massDrift)
      log.warn('fleet.rollout and fleet.massDrift need state.backend: postgres; with files they do nothing');
    return selfFleet(agent, config.agent, health);
  }
  const registry = new PgFleetRegistry(store.pool, config.agent, aliveLimitMs(config), config.fleet.rollout);
  await registry.register();
  let failing = false;
  agent.onCycle(() => {
    registry.heartbeat(heartbeatOf(agent, health)).then(
      () => {
        failing = false;
      },
      (e) => {
        // The cycle itself reports an unreachable database (state_unwritable); say it here once.
        if (!failing) log.warn({ err: errorMessage(e) }, 'fleet heartbeat failed');
        failing = true;
      },
    );
  });
  return registry;
}
