/** Wires an agent (or a one-shot detector) from a validated config. */
import { join } from 'node:path';
import { buildProviders, KINDS, type ProviderHooks } from '../providers/registry.js';
import type { Provider } from '../providers/types.js';
import { Agent } from './agent.js';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { createGitEngine, type EngineKind } from './source/engine.js';
import { DesiredStateSource } from './source/source.js';
import { FileStateStore } from './state/file-store.js';
import type { StateStore } from './state/types.js';

export function buildSource(
  config: Config,
  cacheDir = join(config.state.dir, 'git'),
  clock: () => number = Date.now,
  /** Which Git engine reads the source: `source.engine` unless a caller (a test) says otherwise. */
  engine: EngineKind = config.source.engine,
): DesiredStateSource {
  const repo = createGitEngine(
    {
      url: config.source.url,
      kind: config.source.kind,
      ref: config.source.ref,
      path: config.source.path,
      auth: config.source.auth
        ? { username: config.source.auth.username, password: config.source.auth.password }
        : null,
      cacheDir,
    },
    engine,
  );
  return new DesiredStateSource(repo, KINDS, clock, config.source.verify);
}

export interface BuildOverrides extends ProviderHooks {
  clock?: () => number;
  random?: () => number;
  /** Use these providers instead of building them from the config (tests: count calls, inject faults). */
  providers?: ReadonlyMap<string, Provider>;
  /** Use this state store instead of the files in state.dir (tests: inject faults at the store boundary). */
  store?: StateStore;
  /** The Git engine of the source (tests run the source suite against each). */
  sourceEngine?: EngineKind;
}

export function buildAgent(config: Config, log: Logger, overrides: BuildOverrides = {}): Agent {
  const { clock, random, providers, onProviderRequest, store, sourceEngine } = overrides;
  return new Agent({
    source: buildSource(config, undefined, clock, sourceEngine),
    kinds: KINDS,
    providers: providers ?? buildProviders(config, onProviderRequest ? { onProviderRequest } : {}),
    store:
      store ?? new FileStateStore(config.state.dir, { onNote: (note) => log.warn({ note }, 'state store') }),
    guardrails: config.guardrails,
    initialMode: config.reconcile.mode,
    sourceIntervalMs: config.source.intervalMs,
    reconcileIntervalMs: config.reconcile.intervalMs,
    log,
    ...(clock ? { clock } : {}),
    ...(random ? { random } : {}),
  });
}
