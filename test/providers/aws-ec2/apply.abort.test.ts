/**
 * The abort path of EC2 applies (a shard lease about to expire): against a
 * real moto_server, an action whose signal has fired makes no call and is
 * failed with the signal's reason; a call in flight when it fires is aborted;
 * the other actions of a shared batch still go through.
 */
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { diffOwned } from '../../../agent/diff.js';
import { parseRevision } from '../../../agent/manifest.js';
import { StewardError } from '../../../core/errors.js';
import { Ec2Provider } from '../../../providers/aws-ec2/index.js';
import { KINDS } from '../../../providers/registry.js';
import type { ApplyAction, ApplyOutcome } from '../../../providers/types.js';
import { type Ec2World, ec2World, motoForThisFile } from '../../helpers/moto.js';

const moto = motoForThisFile();
let world: Ec2World;
beforeEach(async () => {
  await moto().reset();
  world = await ec2World(moto());
});

/** Instances tagged Env=dev whose manifests want Env=prod: one tag action each. */
async function drifted(n: number) {
  const ids = await world.run(n, { tags: { Env: 'dev' } });
  const text = ids
    .map(
      (id, i) =>
        `apiVersion: steward/v1\nkind: Ec2Instance\nmetadata: { name: i${i} }\nspec:\n  selector: { instanceId: ${id} }\n  tags: { Env: prod }\n`,
    )
    .join('---\n');
  const r = parseRevision([{ file: 'x.yaml', text }], KINDS);
  assert.ok(r.ok);
  const calls: string[] = [];
  const provider = new Ec2Provider({
    region: world.region,
    endpoint: moto().url,
    onRequest: (op) => calls.push(op),
  });
  const observed = await provider.observe(r.resources);
  const actions: ApplyAction[] = r.resources.map((res) => {
    const o = observed.get(res.key)!;
    assert.equal(o.status, 'present');
    return { resource: res, observed: o.doc, ops: diffOwned(KINDS.get(res.kind)!, res.desired, o.doc) };
  });
  calls.length = 0;
  return { ids, actions, provider, calls };
}

const envOf = async (id: string) =>
  (await world.describe([id]))[0]!.Tags?.find((t) => t.Key === 'Env')?.Value ?? null;

async function apply(
  provider: Ec2Provider,
  actions: ApplyAction[],
  signal: (key: string) => AbortSignal | undefined,
): Promise<ApplyOutcome[]> {
  return provider.apply(actions, { shouldStop: () => false, onOutcome: async () => {}, signal });
}

test('a fired signal: no call is made, the action fails with the reason of the signal', async () => {
  const { ids, actions, provider, calls } = await drifted(1);
  const ctl = new AbortController();
  ctl.abort(new StewardError('LEASE_LOST', 'shard 3 is no longer held by this agent'));
  const out = await apply(provider, actions, () => ctl.signal);
  assert.deepEqual(calls, []);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.outcome, 'failed');
  assert.equal(out[0]!.outcome === 'failed' && out[0]!.code, 'LEASE_LOST');
  assert.equal(await envOf(ids[0]!), 'dev');
});

test('a signal that fires while the call is in flight aborts it: failed with the reason, nothing changed', async () => {
  const { ids, actions, provider } = await drifted(1);
  const ctl = new AbortController();
  // The lease runs out just as CreateTags goes on the wire (inside the SDK's retry loop, before sending).
  provider.client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'CreateTagsCommand')
        ctl.abort(new StewardError('LEASE_EXPIRING', 'the lease of shard 3 was not renewed in time'));
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'leaseRunsOut' },
  );
  const out = await apply(provider, actions, () => ctl.signal);
  assert.equal(out[0]!.outcome, 'failed');
  assert.equal(out[0]!.outcome === 'failed' && out[0]!.code, 'LEASE_EXPIRING');
  assert.equal(await envOf(ids[0]!), 'dev');
});

test('one batch, two leases: the action whose signal fired is cut off, the other is applied', async () => {
  const { ids, actions, provider, calls } = await drifted(2);
  const fired = new AbortController();
  fired.abort(new StewardError('LEASE_LOST', 'lost'));
  const live = new AbortController();
  const out = await apply(provider, actions, (key) =>
    key === actions[0]!.resource.key ? fired.signal : live.signal,
  );
  assert.deepEqual(
    out.map((o) => [o.key, o.outcome]).sort(),
    [
      [actions[0]!.resource.key, 'failed'],
      [actions[1]!.resource.key, 'applied'],
    ].sort(),
  );
  assert.deepEqual(calls, ['CreateTags']);
  assert.equal(await envOf(ids[0]!), 'dev');
  assert.equal(await envOf(ids[1]!), 'prod');
});
