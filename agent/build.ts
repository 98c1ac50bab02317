/** Wires an agent (or a one-shot detector) from a validated config. */
import { join } from 'node:path';
import type { Config } from './config.js';
import { KINDS, buildProviders } from '../providers/registry.js';
import { Agent } from './agent.js';
import type { Logger } from './log.js';
import { GitRepository } from './source/git.js';
import { DesiredStateSource } from './source/source.js';
import { FileStateStore } from './state/file-store.js';

export function buildSource(
  config: Config,
  cacheDir = join(config.state.dir, 'git'),
  clock: () => number = Date.now,
): DesiredStateSource {
  const repo = new GitRepository({
    url: config.source.url,
    kind: config.source.kind,
    ref: config.source.ref,
    path: config.source.path,
    auth: config.source.auth
      ? { username: config.source.auth.username, password: config.source.auth.password }
      : null,
    cacheDir,
  });
  return new DesiredStateSource(repo, KINDS, clock);
}

export function buildAgent(
  config: Config,
  log: Logger,
  overrides: { clock?: () => number; random?: () => number } = {},
): Agent {
  return new Agent({
    source: buildSource(config, undefined, overrides.clock),
    kinds: KINDS,
    providers: buildProviders(config),
    store: new FileStateStore(config.state.dir),
    guardrails: config.guardrails,
    initialMode: config.reconcile.mode,
    sourceIntervalMs: config.source.intervalMs,
    reconcileIntervalMs: config.reconcile.intervalMs,
    log,
    ...overrides,
  });
}
