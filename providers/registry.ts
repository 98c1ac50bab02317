/** Every kind steward knows, and the providers built from the config. */
import type { Config } from '../agent/config.js';
import { StewardError } from '../agent/errors.js';
import { Ec2Provider, ec2InstanceKind, securityGroupKind } from './aws-ec2/index.js';
import { fileKind } from './file/kind.js';
import { FileProvider } from './file/provider.js';
import type { KindDefinition, Provider } from './types.js';

export const KINDS: ReadonlyMap<string, KindDefinition> = new Map([
  [fileKind.kind, fileKind],
  [ec2InstanceKind.kind, ec2InstanceKind],
  [securityGroupKind.kind, securityGroupKind],
]);

export interface ProviderHooks {
  /** Called for every request a provider sends to its API: feeds `steward_provider_requests_total`. */
  onProviderRequest?: (provider: string, operation: string) => void;
}

/** Builds the providers that the config sets up, keyed by provider name. */
export function buildProviders(config: Config, hooks: ProviderHooks = {}): Map<string, Provider> {
  const out = new Map<string, Provider>();
  if (config.providers.file) out.set('file', new FileProvider({ root: config.providers.file.root }));
  const ec2 = config.providers['aws-ec2'];
  if (ec2) {
    const count = hooks.onProviderRequest;
    out.set(
      'aws-ec2',
      new Ec2Provider({
        region: ec2.region,
        endpoint: ec2.endpoint,
        onRequest: count ? (operation) => count('aws-ec2', operation) : undefined,
      }),
    );
  }
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
