/**
 * The `aws-ec2` provider: `Ec2Instance` and `SecurityGroup` resources in one
 * region, read fresh every cycle in batched describes and changed in batched
 * calls (see observe.ts, plan.ts, apply.ts).
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  ApplyAction,
  ApplyControl,
  ApplyOutcome,
  DesiredResource,
  ObserveResult,
  Provider,
} from '../types.js';
import { applyEc2 } from './apply.js';
import { createEc2Client } from './client.js';
import { INSTANCE_KIND, ec2InstanceKind } from './instance-kind.js';
import { observeGroups, observeInstances } from './observe.js';
import { SG_KIND, securityGroupKind } from './sg-kind.js';

export interface Ec2ProviderOptions {
  region: string;
  /** Another endpoint than AWS's, e.g. a moto_server (`http://127.0.0.1:5000`). */
  endpoint?: string | null | undefined;
  /** Called for every HTTP request to the API (each retry counts), e.g. `DescribeInstances`. */
  onRequest?: ((operation: string) => void) | undefined;
  /** SDK attempts per call, throttling retries included (default 3). */
  maxAttempts?: number | undefined;
  /** How long an instance may take to stop before a type change is given up (default 10 min). */
  stopTimeoutMs?: number | undefined;
  /** Delays between stop checks; the last repeats (default 0, 2 s, 4 s, 8 s, 15 s). */
  stopPollMs?: readonly number[] | undefined;
}

export class Ec2Provider implements Provider {
  readonly name = 'aws-ec2';
  readonly kinds = [ec2InstanceKind, securityGroupKind];
  /** The SDK client (tests add middleware to it). */
  readonly client: EC2Client;
  private readonly stopTimeoutMs: number;
  private readonly stopPollMs: readonly number[];
  /** Instances seen by the last full scan: a cost hint for planning reads, never observed state. */
  private readonly scan = { lastSize: null as number | null };

  constructor(opts: Ec2ProviderOptions) {
    this.client = createEc2Client(opts);
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 600_000;
    this.stopPollMs = opts.stopPollMs ?? [0, 2_000, 4_000, 8_000, 15_000];
  }

  async observe(resources: readonly DesiredResource[]): Promise<Map<string, ObserveResult>> {
    const instances = resources.filter((r) => r.kind === INSTANCE_KIND);
    const groups = resources.filter((r) => r.kind === SG_KIND);
    const [a, b] = await Promise.all([
      instances.length > 0 ? observeInstances(this.client, instances, this.scan) : new Map(),
      groups.length > 0 ? observeGroups(this.client, groups) : new Map(),
    ]);
    return new Map<string, ObserveResult>([...a, ...b]);
  }

  apply(actions: readonly ApplyAction[], ctl: ApplyControl): Promise<ApplyOutcome[]> {
    return applyEc2(actions, {
      client: this.client,
      ctl,
      stopTimeoutMs: this.stopTimeoutMs,
      stopPollMs: this.stopPollMs,
      sleep: (ms) => sleep(ms),
    });
  }
}
