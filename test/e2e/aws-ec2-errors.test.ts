/**
 * The aws-ec2 provider when things go wrong, against a real moto_server:
 * selectors that match none or two instances, bad manifests, per-resource
 * API errors, throttling, and eventual consistency. The rest of the cycle
 * must always go on, and nothing may be written where it should not.
 *
 * moto has no IAM enforcement for EC2 and never throttles, so
 * `UnauthorizedOperation` and `RequestLimitExceeded` are injected by an SDK
 * middleware placed where the HTTP request would be sent (inside the SDK's
 * retry loop, so its retries are real); everything else is moto's own answer.
 */
import {
  CreateTagsCommand,
  EC2ServiceException,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { Ec2Provider } from '../../providers/aws-ec2/index.js';
import { KINDS } from '../../providers/registry.js';
import type { ApplyOutcome, DesiredResource } from '../../providers/types.js';
import { type Ec2Fleet, setupEc2Fleet } from '../helpers/ec2-fleet.js';
import { type Ec2World, ec2World, type Moto, startMoto } from '../helpers/moto.js';

let moto: Moto;
before(async () => {
  moto = await startMoto();
});
after(async () => {
  await moto?.stop();
});
beforeEach(async () => {
  await moto.reset();
});

const GUARDRAILS = `soak: { observeCycles: 0 }
maxActionsPerCycle: 10
massDrift: { maxDrifted: 1000, maxDriftedPercent: 100, minManaged: 5 }
rateLimit: { actionsPerMinute: 6000, burst: 1000 }
backoff: { base: 30s, factor: 2, max: 10m, jitter: 0 }`;

/** Read-only operations: anything else counted is a write. */
const READS = new Set(['DescribeInstances', 'DescribeSecurityGroups', 'DescribeInstanceAttribute']);
const writes = (calls: Record<string, number>) =>
  Object.fromEntries(Object.entries(calls).filter(([op]) => !READS.has(op)));

type Ctx = Ec2Fleet;

const setup = (
  t: { after: (fn: () => Promise<void>) => void },
  docs: (w: Ec2World) => Promise<string[]>,
): Promise<Ctx> => setupEc2Fleet(t, moto, docs, GUARDRAILS);

const byId = (name: string, id: string, rest: string) =>
  `apiVersion: steward/v1\nkind: Ec2Instance\nmetadata: { name: ${name} }\nspec:\n  selector: { instanceId: ${id} }\n${rest}`;
const byTags = (name: string, tags: string, rest: string) =>
  `apiVersion: steward/v1\nkind: Ec2Instance\nmetadata: { name: ${name} }\nspec:\n  selector: { tags: ${tags} }\n${rest}`;

/**
 * Makes the provider's client fail some requests as AWS would: `match` sees the
 * operation and the form-encoded request body; the error is thrown where the
 * request would go out (inside the retry loop, after the request counter).
 */
function inject(
  provider: Ec2Provider,
  match: (operation: string, body: string) => boolean,
  error: () => EC2ServiceException,
): { remove(): void } {
  const name = `fault-${Math.random()}`;
  provider.client.middlewareStack.add(
    (next, context) => async (args) => {
      const op = String(context.commandName).replace(/Command$/, '');
      const body = String((args.request as { body?: unknown }).body ?? '');
      if (match(op, body)) throw error();
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name },
  );
  return { remove: () => provider.client.middlewareStack.remove(name) };
}

const unauthorized = () =>
  new EC2ServiceException({
    name: 'UnauthorizedOperation',
    $fault: 'client',
    $metadata: { httpStatusCode: 403 },
    message:
      'You are not authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/steward is not authorized to perform: ec2:CreateTags. Encoded authorization failure message: QUJDREVGR0hJSktMTU5PUA',
  });
const throttled = () =>
  new EC2ServiceException({
    name: 'RequestLimitExceeded',
    $fault: 'client',
    $metadata: { httpStatusCode: 503 },
    message: 'Request limit exceeded.',
  });

test('a selector that matches no instance, or two: a specific error, no write for them; the rest of the cycle runs', async (t) => {
  let good = '';
  let twins: string[] = [];
  const ctx = await setup(t, async (w) => {
    good = (await w.run(1, { tags: { Env: 'dev' } }))[0]!;
    twins = await w.run(2, { tags: { Role: 'twin' } });
    return [
      byId('ghost', 'i-0000000000000dead', '  state: running\n'),
      byTags('twin', '{ Role: twin }', '  tags: { Env: prod }\n'),
      byId('good', good, '  tags: { Env: prod }\n'),
    ];
  });
  const { report, calls } = await ctx.cycle();
  assert.deepEqual(
    report.errors.map((e) => [e.name, e.code, e.error]),
    [
      [
        'ghost',
        'EC2_SELECTOR_NO_MATCH',
        'selector {instanceId: "i-0000000000000dead"} matches no instance; steward never creates one: fix the selector or create the instance',
      ],
      [
        'twin',
        'EC2_SELECTOR_AMBIGUOUS',
        `selector {tags: {Role: "twin"}} matches 2 instances (${[...twins].sort().join(', ')}); it must match exactly one`,
      ],
    ],
  );
  assert.deepEqual(
    report.drift.map((d) => [d.name, d.patch]),
    [['good', [{ op: 'replace', path: '/spec/tags/Env', value: 'prod' }]]],
  );
  assert.equal(report.applied, 1);
  assert.deepEqual(writes(calls), { CreateTags: 1 });
  for (const twin of await ctx.world.describe(twins))
    assert.deepEqual(twin.Tags, [{ Key: 'Role', Value: 'twin' }]);

  // A terminated instance is gone: the same error, never "create it".
  await ctx.world.client.send(new TerminateInstancesCommand({ InstanceIds: [good] }));
  const gone = await ctx.cycle();
  assert.deepEqual(
    gone.report.errors.map((e) => [e.name, e.code]),
    [
      ['ghost', 'EC2_SELECTOR_NO_MATCH'],
      ['twin', 'EC2_SELECTOR_AMBIGUOUS'],
      ['good', 'EC2_SELECTOR_NO_MATCH'],
    ],
  );
  assert.deepEqual(writes(gone.calls), {});
});

test('bad manifests (unknown field, malformed CIDR, bad port range) reject the revision: specific errors, no API call', async (t) => {
  let id = '';
  let sg = '';
  const ctx = await setup(t, async (w) => {
    id = (await w.run(1))[0]!;
    sg = await w.group('web');
    return [byId('web-1', id, '  state: running\n')];
  });
  assert.equal((await ctx.cycle()).report.drifted, 0);
  for (const k of Object.keys(ctx.calls)) delete ctx.calls[k];
  await ctx.commit([
    byId('web-1', id, '  state: running\n  instanceSize: large\n'),
    `apiVersion: steward/v1
kind: SecurityGroup
metadata: { name: web-sg }
spec:
  selector: { groupId: ${sg} }
  ingress:
    - { protocol: tcp, fromPort: 443, toPort: 443, cidr: 10.0.0.0/33 }
    - { protocol: udp, fromPort: 53, toPort: 0, cidr: 10.0.0.0/8 }
`,
  ]);
  const polled = await ctx.h.poll();
  assert.equal(polled.kind, 'rejected');
  assert.deepEqual(
    polled.kind === 'rejected'
      ? polled.problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`)
      : [],
    [
      'fleet/ec2.yaml:7:3: unknown field "spec.instanceSize"; allowed: selector, tags, state, instanceType, securityGroupIds, sourceDestCheck, disableApiTermination',
      'fleet/ec2.yaml:15:58: spec.ingress[0].cidr "10.0.0.0/33" is not a valid IPv4 or IPv6 CIDR block: it has an invalid prefix length "/33" (0-32 for IPv4)',
      'fleet/ec2.yaml:16:46: spec.ingress[1] has fromPort 53 above toPort 0; a port range runs from low to high',
    ],
  );
  assert.deepEqual(ctx.calls, {}, 'validation needs no API call');
  // The last good revision stays in force: reads only.
  const { report, calls } = await ctx.cycle();
  assert.equal(report.managed, 1);
  assert.deepEqual(calls, { DescribeInstances: 1 });
});

test('UnauthorizedOperation on one instance of a shared CreateTags: that one fails (and backs off), the others are tagged', async (t) => {
  let ids: string[] = [];
  const ctx = await setup(t, async (w) => {
    ids = await w.run(3, { tags: { Env: 'dev' } });
    return ids.map((id, i) => byId(`n${i}`, id, '  tags: { Env: prod }\n'));
  });
  const denied = ids[1]!;
  inject(ctx.provider, (op, body) => op === 'CreateTags' && body.includes(`=${denied}`), unauthorized);
  const { report, calls } = await ctx.cycle();
  assert.equal(report.applied, 2);
  assert.equal(report.failed, 1);
  // one batch call (denied as a whole), then one call per id to find the one at fault
  assert.deepEqual(writes(calls), { CreateTags: 4 });
  const audit = await ctx.h.agent.readAudit(10);
  const failed = audit.records.filter((a) => a.outcome === 'failed');
  assert.deepEqual(
    failed.map((a) => [a.name, a.id, a.error]),
    [
      [
        'n1',
        denied,
        `CreateTags ${denied}: You are not authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/steward is not authorized to perform: ec2:CreateTags. (decode the failure with sts decode-authorization-message)`,
      ],
    ],
  );
  const tags = (await ctx.world.describe(ids)).map((i) => i.Tags?.[0]?.Value);
  assert.deepEqual(tags, ['prod', 'dev', 'prod']);
  // Next cycle: the failed one waits out its backoff; nothing is written.
  const next = await ctx.cycle(1_000);
  assert.deepEqual(
    next.report.drift.map((d) => [d.name, d.state, d.attempts]),
    [['n1', 'backoff', 1]],
  );
  assert.deepEqual(writes(next.calls), {});
});

test('throttling: retried by the SDK; when it persists, reads are errors (never "missing") and writes fail into the agent backoff', async (t) => {
  let ids: string[] = [];
  const ctx = await setup(t, async (w) => {
    ids = await w.run(2, { tags: { Env: 'dev' } });
    return ids.map((id, i) => byId(`n${i}`, id, '  tags: { Env: prod }\n  state: running\n'));
  });
  // Throttled once: the SDK retries and the cycle does not notice.
  let once = 1;
  const blip = inject(ctx.provider, (op) => op === 'DescribeInstances' && once-- > 0, throttled);
  const first = await ctx.cycle();
  blip.remove();
  assert.equal(first.report.observeErrors, 0);
  assert.equal(first.report.applied, 2);
  assert.deepEqual(first.calls, { DescribeInstances: 2, CreateTags: 1 });

  // Throttled for good on reads: 3 attempts, then an error for each resource; nothing is written.
  const reads = inject(ctx.provider, (op) => op === 'DescribeInstances', throttled);
  const blind = await ctx.cycle();
  reads.remove();
  assert.deepEqual(
    blind.report.errors.map((e) => [e.name, e.code, e.error]),
    [
      ['n0', 'RequestLimitExceeded', 'DescribeInstances failed: Request limit exceeded.'],
      ['n1', 'RequestLimitExceeded', 'DescribeInstances failed: Request limit exceeded.'],
    ],
  );
  assert.equal(blind.report.drifted, 0);
  assert.deepEqual(blind.calls, { DescribeInstances: 3 });
  assert.equal((await ctx.cycle()).report.drifted, 0, 'reads are back: the first apply is verified');

  // Throttled for good on writes: the shared call is tried 3 times (never split), both fail and back off.
  await ctx.world.client.send(new StopInstancesCommand({ InstanceIds: ids }));
  const writesOff = inject(ctx.provider, (op) => op === 'StartInstances', throttled);
  const failing = await ctx.cycle();
  assert.equal(failing.report.failed, 2);
  assert.deepEqual(writes(failing.calls), { StartInstances: 3 });
  const held = await ctx.cycle(1_000);
  assert.deepEqual(
    held.report.drift.map((d) => [d.name, d.state]),
    [
      ['n0', 'backoff'],
      ['n1', 'backoff'],
    ],
  );
  assert.deepEqual(writes(held.calls), {});
  writesOff.remove();
  const recovered = await ctx.cycle(60_000); // backoff base 30 s, no jitter
  assert.equal(recovered.report.applied, 2);
  assert.deepEqual(writes(recovered.calls), { StartInstances: 1 });
  for (const i of await ctx.world.describe(ids)) assert.equal(i.State?.Name, 'running');
});

test('InvalidInstanceID.NotFound from moto in a shared call: only that resource fails', async () => {
  const world = await ec2World(moto);
  const [real] = await world.run(1);
  await world.client.send(new StopInstancesCommand({ InstanceIds: [real!] }));
  const calls: string[] = [];
  const provider = new Ec2Provider({
    region: world.region,
    endpoint: moto.url,
    onRequest: (op) => calls.push(op),
  });
  const kind = KINDS.get('Ec2Instance')!;
  const resource = (name: string, id: string): DesiredResource => {
    const spec = { selector: { instanceId: id }, state: 'running' };
    return {
      key: `Ec2Instance/${name}`,
      kind: 'Ec2Instance',
      name,
      spec,
      desired: kind.toDesired(spec),
      origin: 'x',
    };
  };
  const ghost = 'i-00000000000000bad';
  const outcomes: ApplyOutcome[] = [];
  const result = await provider.apply(
    [
      {
        resource: resource('real', real!),
        ops: [{ op: 'replace', path: '/spec/state', value: 'running' }],
        observed: { spec: { instanceId: real, tags: {}, state: 'stopped' } },
      },
      {
        resource: resource('ghost', ghost),
        ops: [{ op: 'replace', path: '/spec/state', value: 'running' }],
        observed: { spec: { instanceId: ghost, tags: {}, state: 'stopped' } },
      },
    ],
    { shouldStop: () => false, onOutcome: async (o) => void outcomes.push(o) },
  );
  assert.deepEqual(result, outcomes, 'every outcome was reported as it became known');
  assert.deepEqual(
    result.map((o) => [o.key, o.outcome, o.outcome === 'failed' ? o.code : null]),
    [
      ['Ec2Instance/real', 'applied', null],
      ['Ec2Instance/ghost', 'failed', 'InvalidInstanceID.NotFound'],
    ],
  );
  assert.deepEqual(calls, ['StartInstances', 'StartInstances', 'StartInstances']);
  assert.equal((await world.describe([real!]))[0]!.State?.Name, 'running');
});

test('shutdown during apply: no call starts once shouldStop() is true, and unstarted resources get no outcome', async () => {
  const world = await ec2World(moto);
  const ids = await world.run(2, { tags: { Env: 'dev' } });
  const calls: string[] = [];
  const provider = new Ec2Provider({
    region: world.region,
    endpoint: moto.url,
    onRequest: (op) => calls.push(op),
  });
  const kind = KINDS.get('Ec2Instance')!;
  const action = (i: number) => {
    const spec = { selector: { instanceId: ids[i] }, tags: { Env: 'prod' } };
    return {
      resource: {
        key: `Ec2Instance/n${i}`,
        kind: 'Ec2Instance',
        name: `n${i}`,
        spec,
        desired: kind.toDesired(spec),
        origin: 'x',
      },
      ops: [{ op: 'replace' as const, path: '/spec/tags/Env', value: 'prod' }],
      observed: { spec: { instanceId: ids[i], tags: { Env: 'dev' }, state: 'running' } },
    };
  };
  const result = await provider.apply([action(0), action(1)], {
    shouldStop: () => true,
    onOutcome: async () => {},
  });
  assert.deepEqual(result, []);
  assert.deepEqual(calls, []);
});

test('eventual consistency: a stale read right after an apply is not "did not stick"; drift that outlasts the settle window is', async (t) => {
  let id = '';
  const ctx = await setup(t, async (w) => {
    id = (await w.run(1, { tags: { Env: 'dev' } }))[0]!;
    return [byId('web-1', id, '  tags: { Env: prod }\n')];
  });
  assert.equal((await ctx.cycle()).report.applied, 1);
  const stale = () =>
    ctx.world.client.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'Env', Value: 'dev' }] }));
  // The next read, 2 s later, still shows the old value (as EC2 may): held, not counted, not re-applied.
  await stale();
  const settling = await ctx.cycle(2_000);
  assert.deepEqual(
    settling.report.drift.map((d) => [d.patch, d.attempts]),
    [[[{ op: 'replace', path: '/spec/tags/Env', value: 'prod' }], 0]],
  );
  assert.equal(settling.report.applied, 0);
  assert.deepEqual(writes(settling.calls), {});
  // Past the 5 s window the same drift counts: the apply did not stick (someone fights it), so it backs off.
  const counted = await ctx.cycle(4_000);
  assert.equal(counted.report.applied, 0);
  assert.deepEqual(
    counted.report.drift.map((d) => [d.state, d.attempts]),
    [['backoff', 1]],
  );
  assert.equal(ctx.h.events.filter((e) => e.type === 'resource_stuck').length, 0);
});

test('without moto_server the helper fails loudly and names the fix (never a silent skip)', async () => {
  const saved = process.env['MOTO_SERVER'];
  process.env['MOTO_SERVER'] = '/nonexistent/moto_server';
  try {
    await assert.rejects(
      startMoto(),
      /moto_server not found at \/nonexistent\/moto_server\. .*run npm test once/,
    );
  } finally {
    if (saved === undefined) delete process.env['MOTO_SERVER'];
    else process.env['MOTO_SERVER'] = saved;
  }
});
