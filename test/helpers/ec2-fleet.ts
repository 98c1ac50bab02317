/**
 * An EC2 test fleet: manifests in a local Git repository, a harness agent
 * whose aws-ec2 provider talks to a real moto_server, and a counter of every
 * API call the provider makes. Shared by the EC2 end-to-end tests.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CycleReport } from '../../agent/reconciler.js';
import { Ec2Provider } from '../../providers/aws-ec2/index.js';
import { buildProviders } from '../../providers/registry.js';
import { createTestRepo, type TestRepo } from './git-repo.js';
import { type Harness, makeHarness } from './harness.js';
import { type Ec2World, ec2World, type Moto } from './moto.js';

export interface Ec2Fleet {
  world: Ec2World;
  repo: TestRepo;
  h: Harness;
  provider: Ec2Provider;
  /** API calls by operation since the last `cycle()`. */
  calls: Record<string, number>;
  /** Advances the clock (default: past the 5 s settle window of the last apply), runs one cycle, counts its calls. */
  cycle(advanceMs?: number): Promise<{ report: CycleReport; calls: Record<string, number> }>;
  /** Replaces the manifests in Git (one file) and commits. */
  commit(docs: string[]): Promise<string>;
}

export async function setupEc2Fleet(
  t: { after: (fn: () => Promise<void>) => void },
  moto: Moto,
  docs: (w: Ec2World) => Promise<string[]>,
  guardrails: string,
): Promise<Ec2Fleet> {
  const world = await ec2World(moto);
  const manifests = await docs(world);
  const base = await mkdtemp(join(tmpdir(), 'steward-ec2-'));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  const commit = async (d: string[]) => {
    await repo.write('fleet/ec2.yaml', d.join('---\n'));
    return repo.commit('desired state');
  };
  await commit(manifests);
  const calls: Record<string, number> = {};
  let provider: Ec2Provider | undefined;
  const h = await makeHarness({
    sourceUrl: repo.workDir,
    guardrails,
    providersYaml: `aws-ec2: { region: ${world.region}, endpoint: "${moto.url}" }`,
    providers: (config) => {
      // The real Ec2Provider (not the registry's lazy wrapper), so tests can reach its SDK client.
      const map = buildProviders(config);
      provider = new Ec2Provider({
        region: world.region,
        endpoint: moto.url,
        onRequest: (op) => {
          calls[op] = (calls[op] ?? 0) + 1;
        },
      });
      map.set('aws-ec2', provider);
      return map;
    },
  });
  t.after(async () => {
    await h.close();
    await rm(base, { recursive: true, force: true });
  });
  return {
    world,
    repo,
    h,
    provider: provider!,
    calls,
    commit,
    async cycle(advanceMs = 60_000) {
      for (const k of Object.keys(calls)) delete calls[k];
      h.clock.now += advanceMs;
      const report = await h.cycle();
      return { report, calls: { ...calls } };
    },
  };
}
