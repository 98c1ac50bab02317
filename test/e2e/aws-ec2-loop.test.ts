/**
 * The aws-ec2 provider end to end: a real local Git repository, the real
 * agent (guardrails included, unchanged), and a real moto_server started for
 * this file. Drift is made through the SDK as someone else would make it;
 * every test asserts the exact JSON Patch, the state of the resource after
 * the cycle, and the API calls the provider made (counted by its SDK
 * middleware, the same one that feeds steward_provider_requests_total).
 */
import {
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeSecurityGroupRulesCommand,
  ModifyInstanceAttributeCommand,
  ModifySecurityGroupRulesCommand,
  AuthorizeSecurityGroupIngressCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { type Ec2Fleet, setupEc2Fleet } from '../helpers/ec2-fleet.js';
import { type Ec2World, type Moto, startMoto } from '../helpers/moto.js';

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

const LOOSE = `soak: { observeCycles: 0 }
maxActionsPerCycle: 10
massDrift: { maxDrifted: 1000, maxDriftedPercent: 100, minManaged: 5 }
rateLimit: { actionsPerMinute: 6000, burst: 1000 }`;

type Ctx = Ec2Fleet;

const setup = (
  t: { after: (fn: () => Promise<void>) => void },
  docs: (w: Ec2World) => Promise<string[]>,
  guardrails = LOOSE,
): Promise<Ctx> => setupEc2Fleet(t, moto, docs, guardrails);

const instanceDoc = (name: string, spec: string) =>
  `apiVersion: steward/v1\nkind: Ec2Instance\nmetadata: { name: ${name} }\nspec:\n${spec}`;
const byId = (name: string, id: string, rest: string) =>
  instanceDoc(name, `  selector: { instanceId: ${id} }\n${rest}`);
const groupDoc = (name: string, spec: string) =>
  `apiVersion: steward/v1\nkind: SecurityGroup\nmetadata: { name: ${name} }\nspec:\n${spec}`;

const tagsOf = (i: { Tags?: Array<{ Key?: string; Value?: string }> }) =>
  Object.fromEntries((i.Tags ?? []).map((x) => [x.Key, x.Value]).sort());

test('tag drift: the exact patch, reverted in one CreateTags; a tag dropped from Git is deleted, others are left alone', async (t) => {
  let id = '';
  const ctx = await setup(t, async (w) => {
    id = (await w.run(1, { tags: { Name: 'web-1', Env: 'prod', Team: 'web', Owner: 'alice' } }))[0]!;
    return [byId('web-1', id, '  tags: { Env: prod, Team: web }\n')];
  });
  const first = await ctx.cycle();
  assert.equal(first.report.drifted, 0);
  assert.deepEqual(first.calls, { DescribeInstances: 1 });

  // Someone edits one tag and deletes another.
  await ctx.world.client.send(
    new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'Env', Value: 'dev' }] }),
  );
  await ctx.world.client.send(new DeleteTagsCommand({ Resources: [id], Tags: [{ Key: 'Team' }] }));
  const { report, calls } = await ctx.cycle();
  assert.deepEqual(
    report.drift.map((d) => [d.kind, d.name, d.id, d.patch]),
    [
      [
        'Ec2Instance',
        'web-1',
        id,
        [
          { op: 'replace', path: '/spec/tags/Env', value: 'prod' },
          { op: 'add', path: '/spec/tags/Team', value: 'web' },
        ],
      ],
    ],
  );
  assert.equal(report.applied, 1);
  assert.deepEqual(calls, { DescribeInstances: 1, CreateTags: 1 });
  assert.deepEqual(tagsOf((await ctx.world.describe([id]))[0]!), {
    Env: 'prod',
    Name: 'web-1',
    Owner: 'alice',
    Team: 'web',
  });
  assert.equal((await ctx.cycle()).report.drifted, 0);

  // Git drops Team: steward applied it, so it is deleted; Owner and Name were never steward's.
  await ctx.commit([byId('web-1', id, '  tags: { Env: prod }\n')]);
  const dropped = await ctx.cycle();
  assert.deepEqual(dropped.report.drift[0]!.patch, [{ op: 'remove', path: '/spec/tags/Team' }]);
  assert.deepEqual(dropped.calls, { DescribeInstances: 1, DeleteTags: 1 });
  assert.deepEqual(tagsOf((await ctx.world.describe([id]))[0]!), {
    Env: 'prod',
    Name: 'web-1',
    Owner: 'alice',
  });
  assert.equal((await ctx.cycle()).report.drifted, 0);
});

test('a stopped instance is started again; a tag selector finds it', async (t) => {
  let id = '';
  const ctx = await setup(t, async (w) => {
    id = (await w.run(1, { tags: { Name: 'app-7' } }))[0]!;
    return [instanceDoc('app-7', '  selector: { tags: { Name: app-7 } }\n  state: running\n')];
  });
  assert.equal((await ctx.cycle()).report.drifted, 0);
  await ctx.world.client.send(new StopInstancesCommand({ InstanceIds: [id] }));
  const { report, calls } = await ctx.cycle();
  assert.deepEqual(
    report.drift.map((d) => [d.id, d.patch]),
    [[id, [{ op: 'replace', path: '/spec/state', value: 'running' }]]],
  );
  assert.equal(report.applied, 1);
  assert.deepEqual(calls, { DescribeInstances: 1, StartInstances: 1 });
  assert.equal((await ctx.world.describe([id]))[0]!.State?.Name, 'running');
  assert.equal((await ctx.cycle()).report.drifted, 0);
});

test('a widened security-group rule is detected as the exact patch and narrowed again', async (t) => {
  let sg = '';
  const ctx = await setup(t, async (w) => {
    sg = await w.group('web');
    await w.client.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: sg,
        IpPermissions: [
          {
            IpProtocol: 'tcp',
            FromPort: 443,
            ToPort: 443,
            IpRanges: [{ CidrIp: '10.0.0.0/8', Description: 'https' }],
          },
        ],
      }),
    );
    return [
      groupDoc(
        'web-sg',
        `  selector: { groupName: web, vpcId: ${w.vpcId} }
  ingress:
    - { protocol: tcp, fromPort: 443, toPort: 443, cidr: 10.0.0.0/8, description: https }
`,
      ),
    ];
  });
  const first = await ctx.cycle();
  assert.equal(first.report.drifted, 0);
  assert.deepEqual(first.calls, { DescribeSecurityGroups: 1 });

  // Someone opens the rule to the world, keeping its description.
  const rules = await ctx.world.client.send(
    new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [sg] }] }),
  );
  const rule = rules.SecurityGroupRules!.find((r) => !r.IsEgress)!;
  await ctx.world.client.send(
    new ModifySecurityGroupRulesCommand({
      GroupId: sg,
      SecurityGroupRules: [
        {
          SecurityGroupRuleId: rule.SecurityGroupRuleId!,
          SecurityGroupRule: {
            IpProtocol: 'tcp',
            FromPort: 443,
            ToPort: 443,
            CidrIpv4: '0.0.0.0/0',
            Description: 'https',
          },
        },
      ],
    }),
  );
  const { report, calls } = await ctx.cycle();
  assert.deepEqual(
    report.drift.map((d) => [d.kind, d.id, d.patch]),
    [['SecurityGroup', sg, [{ op: 'replace', path: '/spec/ingress/0/cidr', value: '10.0.0.0/8' }]]],
  );
  assert.equal(report.applied, 1);
  assert.deepEqual(calls, {
    DescribeSecurityGroups: 1,
    AuthorizeSecurityGroupIngress: 1,
    RevokeSecurityGroupIngress: 1,
  });
  const after = await ctx.world.describeGroup(sg);
  assert.deepEqual(after.IpPermissions, [
    {
      IpProtocol: 'tcp',
      FromPort: 443,
      ToPort: 443,
      IpRanges: [{ CidrIp: '10.0.0.0/8', Description: 'https' }],
      Ipv6Ranges: [],
      PrefixListIds: [],
      UserIdGroupPairs: [],
    },
  ]);
  assert.equal((await ctx.cycle()).report.drifted, 0);

  // An extra rule added by hand is drift too: the rule set in Git is the whole set.
  await ctx.world.client.send(
    new AuthorizeSecurityGroupIngressCommand({
      GroupId: sg,
      IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }],
    }),
  );
  const extra = await ctx.cycle();
  assert.deepEqual(extra.report.drift[0]!.patch, [
    // sorted canonical list: the new port-22 rule sorts first, so the patch is by index
    { op: 'remove', path: '/spec/ingress/1' },
    { op: 'replace', path: '/spec/ingress/0/cidr', value: '10.0.0.0/8' },
    { op: 'replace', path: '/spec/ingress/0/toPort', value: 443 },
    { op: 'replace', path: '/spec/ingress/0/fromPort', value: 443 },
    { op: 'add', path: '/spec/ingress/0/description', value: 'https' },
  ]);
  assert.deepEqual(extra.calls, { DescribeSecurityGroups: 1, RevokeSecurityGroupIngress: 1 });
  assert.equal((await ctx.world.describeGroup(sg)).IpPermissions!.length, 1);
});

test('a swapped security-group set is detected and swapped back', async (t) => {
  let id = '';
  let a = '';
  let b = '';
  const ctx = await setup(t, async (w) => {
    a = await w.group('app');
    b = await w.group('other');
    id = (await w.run(1, { groups: [a] }))[0]!;
    return [byId('app-1', id, `  securityGroupIds: [${a}]\n  sourceDestCheck: true\n`)];
  });
  assert.equal((await ctx.cycle()).report.drifted, 0);
  await ctx.world.client.send(new ModifyInstanceAttributeCommand({ InstanceId: id, Groups: [b] }));
  const { report, calls } = await ctx.cycle();
  assert.deepEqual(
    report.drift.map((d) => d.patch),
    [[{ op: 'replace', path: '/spec/securityGroupIds/0', value: a }]],
  );
  assert.equal(report.applied, 1);
  assert.deepEqual(calls, { DescribeInstances: 1, ModifyInstanceAttribute: 1 });
  assert.deepEqual(
    (await ctx.world.describe([id]))[0]!.SecurityGroups!.map((g) => g.GroupId),
    [a],
  );
  assert.equal((await ctx.cycle()).report.drifted, 0);
});

test('an instanceType change is reported, never applied by default; with fieldPolicy revert it is stop → modify → start', async (t) => {
  let id = '';
  const docs = async (w: Ec2World) => {
    id = (await w.run(1, { type: 't3.micro' }))[0]!;
    return [byId('db-1', id, '  instanceType: t3.large\n  state: running\n')];
  };
  const ctx = await setup(t, docs);
  const { report, calls } = await ctx.cycle();
  assert.deepEqual(
    report.drift.map((d) => [d.patch, d.state]),
    [[[{ op: 'replace', path: '/spec/instanceType', value: 't3.large' }], 'report-only']],
  );
  assert.equal(report.applied, 0);
  assert.deepEqual(calls, { DescribeInstances: 1 });
  assert.equal((await ctx.world.describe([id]))[0]!.InstanceType, 't3.micro');

  const allowed = await setup(
    t,
    docs,
    `${LOOSE}\nfieldPolicy: { Ec2Instance: { /spec/instanceType: revert } }`,
  );
  const r = await allowed.cycle();
  assert.equal(r.report.applied, 1);
  assert.deepEqual(r.calls, {
    DescribeInstances: 2, // the observe, and one "stopped yet?" read (moto stops at once)
    StopInstances: 1,
    ModifyInstanceAttribute: 1,
    StartInstances: 1,
  });
  const [after] = await allowed.world.describe([id]);
  assert.equal(after!.InstanceType, 't3.large');
  assert.equal(after!.State?.Name, 'running');
  assert.equal((await allowed.cycle()).report.drifted, 0);
});

test('30 drifted instances with a cap of 10: three cycles converge them, one CreateTags each', async (t) => {
  let ids: string[] = [];
  const ctx = await setup(t, async (w) => {
    ids = await w.run(30, { tags: { Env: 'prod' } });
    return ids.map((id, i) => byId(`node-${i}`, id, '  tags: { Env: prod }\n'));
  });
  assert.equal((await ctx.cycle()).report.drifted, 0);
  await ctx.world.client.send(
    new CreateTagsCommand({ Resources: ids, Tags: [{ Key: 'Env', Value: 'dev' }] }),
  );
  const seen: Array<[number, number, Record<string, number>]> = [];
  for (let i = 0; i < 4; i++) {
    const { report, calls } = await ctx.cycle();
    seen.push([report.drifted, report.applied, calls]);
  }
  assert.deepEqual(seen, [
    [30, 10, { DescribeInstances: 1, CreateTags: 1 }],
    [20, 10, { DescribeInstances: 1, CreateTags: 1 }],
    [10, 10, { DescribeInstances: 1, CreateTags: 1 }],
    [0, 0, { DescribeInstances: 1 }],
  ]);
  for (const i of await ctx.world.describe(ids)) assert.equal(tagsOf(i)['Env'], 'prod');
});

test('API economy: 300 instances are read in one DescribeInstances, like 30; a tag change shared by 50 is one CreateTags, its removal one DeleteTags', async (t) => {
  let ids: string[] = [];
  const docs = (n: number, tags = (_i: number) => '{ Env: prod }') =>
    ids.slice(0, n).map((id, i) => byId(`n${i}`, id, `  tags: ${tags(i)}\n  state: running\n`));
  const ctx = await setup(
    t,
    async (w) => {
      ids = await w.run(300, { tags: { Env: 'prod' } });
      return docs(30);
    },
    LOOSE.replace('maxActionsPerCycle: 10', 'maxActionsPerCycle: 50'),
  );
  const small = await ctx.cycle();
  assert.equal(small.report.managed, 30);
  assert.deepEqual(small.calls, { DescribeInstances: 1 });

  await ctx.commit(docs(300));
  const big = await ctx.cycle();
  assert.equal(big.report.managed, 300);
  assert.equal(big.report.drifted, 0);
  assert.deepEqual(big.calls, { DescribeInstances: 1 });

  // Git: 50 instances get Owner=ops. One distinct change, one call.
  await ctx.commit(docs(300, (i) => (i < 50 ? '{ Env: prod, Owner: ops }' : '{ Env: prod }')));
  const tagged = await ctx.cycle();
  assert.equal(tagged.report.drifted, 50);
  assert.equal(tagged.report.applied, 50);
  assert.deepEqual(tagged.report.drift[0]!.patch, [{ op: 'add', path: '/spec/tags/Owner', value: 'ops' }]);
  assert.deepEqual(tagged.calls, { DescribeInstances: 1, CreateTags: 1 });
  const described = await ctx.world.describe(ids.slice(0, 51));
  assert.deepEqual(
    described.map((i) => tagsOf(i)['Owner'] ?? null),
    [...Array<string>(50).fill('ops'), null],
  );

  // Git drops it again: one DeleteTags for the 50.
  await ctx.commit(docs(300));
  const untagged = await ctx.cycle();
  assert.equal(untagged.report.applied, 50);
  assert.deepEqual(untagged.calls, { DescribeInstances: 1, DeleteTags: 1 });
  for (const i of await ctx.world.describe(ids.slice(0, 50))) assert.deepEqual(tagsOf(i), { Env: 'prod' });
});

test('instance attributes: disableApiTermination is read only for manifests that set it; both flags are reverted', async (t) => {
  let ids: string[] = [];
  const ctx = await setup(t, async (w) => {
    ids = await w.run(3);
    return [
      byId('guarded', ids[0]!, '  disableApiTermination: true\n  sourceDestCheck: false\n'),
      byId('plain-1', ids[1]!, '  state: running\n'),
      byId('plain-2', ids[2]!, '  state: running\n'),
    ];
  });
  const { report, calls } = await ctx.cycle();
  assert.deepEqual(
    report.drift.map((d) => [d.name, d.patch]),
    [
      [
        'guarded',
        [
          { op: 'replace', path: '/spec/disableApiTermination', value: true },
          { op: 'replace', path: '/spec/sourceDestCheck', value: false },
        ],
      ],
    ],
  );
  assert.deepEqual(calls, { DescribeInstances: 1, DescribeInstanceAttribute: 1, ModifyInstanceAttribute: 2 });
  const again = await ctx.cycle();
  assert.equal(again.report.drifted, 0);
  assert.deepEqual(again.calls, { DescribeInstances: 1, DescribeInstanceAttribute: 1 });
});

test('security group: tags and an authoritative egress set (the default allow-all is revoked when Git says so)', async (t) => {
  let sg = '';
  let peer = '';
  const ctx = await setup(t, async (w) => {
    sg = await w.group('db');
    peer = await w.group('app');
    return [
      groupDoc(
        'db-sg',
        `  selector: { groupId: ${sg} }
  tags: { Env: prod }
  ingress:
    - { protocol: tcp, fromPort: 5432, toPort: 5432, sourceGroupId: ${peer}, description: app }
  egress:
    - { protocol: udp, fromPort: 53, toPort: 53, cidr: "2001:DB8::/32" }
`,
      ),
    ];
  });
  const { report, calls } = await ctx.cycle();
  assert.deepEqual(report.drift[0]!.patch, [
    { op: 'replace', path: '/spec/egress/0/cidr', value: '2001:db8::/32' },
    { op: 'replace', path: '/spec/egress/0/protocol', value: 'udp' },
    { op: 'add', path: '/spec/egress/0/fromPort', value: 53 },
    { op: 'add', path: '/spec/egress/0/toPort', value: 53 },
    {
      op: 'add',
      path: '/spec/ingress/0',
      value: { protocol: 'tcp', fromPort: 5432, toPort: 5432, sourceGroupId: peer, description: 'app' },
    },
    { op: 'add', path: '/spec/tags/Env', value: 'prod' },
  ]);
  assert.equal(report.applied, 1);
  assert.deepEqual(calls, {
    DescribeSecurityGroups: 1,
    AuthorizeSecurityGroupIngress: 1,
    AuthorizeSecurityGroupEgress: 1,
    RevokeSecurityGroupEgress: 1,
    CreateTags: 1,
  });
  const g = await ctx.world.describeGroup(sg);
  assert.deepEqual(
    g.IpPermissionsEgress!.map((p) => [p.IpProtocol, p.FromPort, p.Ipv6Ranges?.[0]?.CidrIpv6?.toLowerCase()]),
    [['udp', 53, '2001:db8::/32']],
  );
  assert.deepEqual(g.Tags, [{ Key: 'Env', Value: 'prod' }]);
  assert.equal((await ctx.cycle()).report.drifted, 0);
});
