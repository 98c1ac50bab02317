/** Wires an agent (or a one-shot detector) from a validated config. */
import { buildProviders, KINDS, type ProviderHooks } from '../providers/registry.js';
import type { Provider } from '../providers/types.js';
import { Agent } from './agent.js';
import { aliveLimitMs, sourceKey } from './fleet/registry.js';
import { combineGates, pgFleetMassDrift, pgRolloutGate, type RolloutGateFn } from './fleet/rollout-gate.js';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { EngineKind } from './source/engine.js';
import { buildSource } from './source/from-config.js';
import { FileStateStore } from './state/file-store.js';
import { createPgPool, PgStateStore } from './state/pg-store.js';
import type { StateStore } from './state/types.js';
import type { HeldShard } from './fleet/leases.js';
import { openShards } from './fleet/fence.js';

/**
 * The state store `state.backend` names: the files in state.dir, or the fleet's PostgreSQL (its pool
 * bounded by state.postgres.poolSize; connects on the first load).
 */
export function buildStore(config: Config, log: Logger): StateStore {
  const pgc = config.state.postgres;
  if (config.state.backend !== 'postgres' || !pgc)
    return new FileStateStore(config.state.dir, { onNote: (note) => log.warn({ note }, 'state store') });
  const pool = createPgPool(pgc, config.agent.id, (message) =>
    log.warn({ err: message }, 'PostgreSQL connection lost'),
  );
  return new PgStateStore({ pool, agentId: config.agent.id });
}

export { buildSource };

export interface BuildOverrides extends ProviderHooks {
  clock?: () => number;
  random?: () => number;
  /** Use these providers instead of building them from the config (tests: count calls, inject faults). */
  providers?: ReadonlyMap<string, Provider>;
  /** Use this state store instead of the files in state.dir (tests: inject faults at the store boundary). */
  store?: StateStore;
  /** The Git engine of the source (tests run the source suite against each). */
  sourceEngine?: EngineKind;
  /** fleet.rollout: the wave gate (built by the daemon with the postgres backend). */
  gate?: RolloutGateFn;
  /** Called after every lease renew round with the shards held (metrics). */
  onShards?: (held: readonly HeldShard[]) => void;
}

/**
 * What an agent checks with the fleet before acting on a revision, with a shared (PostgreSQL) state:
 * the rollout waves (fleet.rollout), then — only for an agent whose wave lets it act — the fleet-wide
 * mass drift (fleet.massDrift): an agent held by its wave is not counted as one that acted. None otherwise.
 */
export function buildGate(config: Config, store: StateStore): RolloutGateFn | undefined {
  if (!(store instanceof PgStateStore)) return undefined;
  const alive = aliveLimitMs(config);
  const source = sourceKey(config.source);
  const { massDrift, rollout } = config.fleet;
  return combineGates([
    ...(rollout ? [pgRolloutGate(store, config.agent.id, rollout, alive, source)] : []),
    ...(massDrift
      ? [
          pgFleetMassDrift(
            store,
            config.agent.id,
            massDrift.maxDriftedPercent,
            alive,
            MASS_DRIFT_WINDOW_FACTOR * alive,
            source,
          ),
        ]
      : []),
  ]);
}

/** fleet.massDrift counts the agents that acted on a revision's drift within this many liveness limits. */
const MASS_DRIFT_WINDOW_FACTOR = 10;

export function buildAgent(config: Config, log: Logger, overrides: BuildOverrides = {}): Agent {
  const { clock, random, providers, onProviderRequest, store, sourceEngine, gate, onShards } = overrides;
  return new Agent({
    shards: openShards(config, KINDS, log, onShards),
    source: buildSource(config, undefined, clock, sourceEngine),
    kinds: KINDS,
    providers: providers ?? buildProviders(config, onProviderRequest ? { onProviderRequest } : {}),
    store: store ?? buildStore(config, log),
    guardrails: config.guardrails,
    initialMode: config.reconcile.mode,
    sourceIntervalMs: config.source.intervalMs,
    reconcileIntervalMs: config.reconcile.intervalMs,
    health: config.health,
    log,
    windows: config.windows,
    configFile: config.file,
    ...(clock ? { clock } : {}),
    ...(random ? { random } : {}),
    ...(gate ? { gate } : {}),
  });
}
