/** Every kind steward knows, and the providers built from the config. */
import { StewardError } from '../core/errors.js';
import type { ProvidersConfig } from './config.js';
import { ec2InstanceKind } from './aws-ec2/instance-kind.js';
import { securityGroupKind } from './aws-ec2/sg-kind.js';
import { fileKind } from './file/kind.js';
import { FileProvider } from './file/provider.js';
import type {
  ApplyAction,
  ApplyControl,
  ApplyOutcome,
  DesiredResource,
  KindDefinition,
  ObserveResult,
  Provider,
} from './types.js';

export type { ProvidersConfig } from './config.js';

export const KINDS: ReadonlyMap<string, KindDefinition> = new Map([
  [fileKind.kind, fileKind],
  [ec2InstanceKind.kind, ec2InstanceKind],
  [securityGroupKind.kind, securityGroupKind],
]);

/** What building the providers needs: their slice, and the state dir (the file provider keeps its root identity there). */
export interface ProviderSettings {
  readonly providers: ProvidersConfig;
  readonly state: { readonly dir: string };
}

export interface ProviderHooks {
  /** Called for every request a provider sends to its API: feeds `steward_provider_requests_total`. */
  onProviderRequest?: (provider: string, operation: string) => void;
}

/**
 * Builds the providers that the config sets up, keyed by provider name.
 * `readOnly` (one-shot commands such as `plan`): providers write no state of their own.
 */
export function buildProviders(
  config: ProviderSettings,
  hooks: ProviderHooks = {},
  { readOnly = false }: { readOnly?: boolean } = {},
): Map<string, Provider> {
  const out = new Map<string, Provider>();
  const file = config.providers.file;
  if (file)
    out.set(
      'file',
      new FileProvider({ root: file.root, stateDir: config.state.dir, recordIdentity: !readOnly }),
    );
  const ec2 = config.providers['aws-ec2'];
  if (ec2) {
    const count = hooks.onProviderRequest;
    out.set(
      'aws-ec2',
      new LazyProvider('aws-ec2', [ec2InstanceKind, securityGroupKind], async () => {
        const { Ec2Provider } = await import('./aws-ec2/provider.js');
        return new Ec2Provider({
          region: ec2.region,
          endpoint: ec2.endpoint,
          onRequest: count ? (operation) => count('aws-ec2', operation) : undefined,
        });
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

/**
 * A provider whose implementation is loaded on first use: the AWS SDK costs
 * ~80 MiB of memory and start-up time, which an agent that manages only
 * files should not pay.
 */
class LazyProvider implements Provider {
  private impl: Promise<Provider> | null = null;

  constructor(
    readonly name: string,
    readonly kinds: readonly KindDefinition[],
    private readonly load: () => Promise<Provider>,
  ) {}

  private get(): Promise<Provider> {
    this.impl ??= this.load();
    return this.impl;
  }

  async observe(resources: readonly DesiredResource[]): Promise<Map<string, ObserveResult>> {
    return (await this.get()).observe(resources);
  }

  async apply(actions: readonly ApplyAction[], ctl: ApplyControl): Promise<ApplyOutcome[]> {
    return (await this.get()).apply(actions, ctl);
  }
}
