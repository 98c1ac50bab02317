/**
 * The desired-state source a validated config names. Apart from agent/build.ts (which wires a whole agent, and with
 * it PostgreSQL, the fleet and health checks) so that `steward plan` loads only the source: pg alone is ≈ 120 ms of
 * start-up (its stream module builds a fetch `Response` at import, which loads undici).
 */
import { join } from 'node:path';
import { KINDS } from '../../providers/registry.js';
import type { Config } from '../config.js';
import { createGitEngine, type EngineKind } from './engine.js';
import { DesiredStateSource } from './source.js';

export function buildSource(
  config: Config,
  cacheDir = join(config.state.dir, 'git'),
  clock: () => number = Date.now,
  /** Which Git engine reads the source: `source.engine` unless a caller (a test) says otherwise. */
  engine: EngineKind = config.source.engine,
  /** One revision only (`steward plan`): nothing kept for a later poll. */
  opts: { oneShot?: boolean } = {},
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
  return new DesiredStateSource(repo, KINDS, clock, config.source.verify, opts);
}
