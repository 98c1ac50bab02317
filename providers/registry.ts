/** Every kind steward knows, and the providers built from the config. */
import type { Config } from '../agent/config.js';
import { StewardError } from '../agent/errors.js';
import { fileKind } from './file/kind.js';
import { FileProvider } from './file/provider.js';
import type { KindDefinition, Provider } from './types.js';

export const KINDS: ReadonlyMap<string, KindDefinition> = new Map([[fileKind.kind, fileKind]]);

/** Builds the providers that the config sets up, keyed by provider name. */
export function buildProviders(config: Config): Map<string, Provider> {
  const out = new Map<string, Provider>();
  if (config.providers.file) out.set('file', new FileProvider({ root: config.providers.file.root }));
  return out;
}

export function providerFor(kind: KindDefinition, providers: ReadonlyMap<string, Provider>): Provider {
  const p = providers.get(kind.provider);
  if (!p)
    throw new StewardError(
      'PROVIDER_NOT_CONFIGURED',
      `manifests of kind ${kind.kind} need providers.${kind.provider} in the config; add it or remove those manifests`,
    );
  return p;
}
