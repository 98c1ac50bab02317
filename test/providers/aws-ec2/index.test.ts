/**
 * The Ec2Instance and SecurityGroup kinds: validation (exact messages, with
 * file:line:col through the real manifest parser), normalisation to owned
 * documents, and removal rules.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffOwned } from '../../../agent/diff.js';
import { formatProblem } from '../../../core/errors.js';
import { parseRevision } from '../../../agent/manifest.js';
import { ec2InstanceKind } from '../../../providers/aws-ec2/instance-kind.js';
import { securityGroupKind } from '../../../providers/aws-ec2/sg-kind.js';
import { KINDS } from '../../../providers/registry.js';

const instance = (spec: string, name = 'web-1') =>
  `apiVersion: steward/v1\nkind: Ec2Instance\nmetadata: { name: ${name} }\nspec:\n${spec}`;
const group = (spec: string, name = 'web-sg') =>
  `apiVersion: steward/v1\nkind: SecurityGroup\nmetadata: { name: ${name} }\nspec:\n${spec}`;

function problems(text: string, more: Record<string, string> = {}): string[] {
  const r = parseRevision(
    [{ file: 'x.yaml', text }, ...Object.entries(more).map(([file, t]) => ({ file, text: t }))],
    KINDS,
  );
  return r.ok ? [] : r.problems.map(formatProblem);
}

function parse(text: string) {
  const r = parseRevision([{ file: 'x.yaml', text }], KINDS);
  assert.equal(r.ok, true, r.ok ? '' : r.problems.map(formatProblem).join('\n'));
  return r.resources;
}

test('the SPEC examples are valid', () => {
  const text = `apiVersion: steward/v1
kind: Ec2Instance
metadata: { name: web-1 }
spec:
  selector: { instanceId: i-0123456789abcdef0 }   # or { tags: { Name: web-1 } }: must match exactly one
  state: running
  tags: { Env: prod, Team: web }
  securityGroupIds: [sg-0123]                      # a set: order is not drift
policy: { onDrift: revert }                       # optional: revert | report
---
apiVersion: steward/v1
kind: SecurityGroup
metadata: { name: web-sg }
spec:
  selector: { groupId: sg-0123 }                  # or { groupName: web, vpcId: vpc-1 }
  tags: { Env: prod }
  ingress:
    - { protocol: tcp, fromPort: 443, toPort: 443, cidr: 0.0.0.0/0 }
`;
  const [i, g] = parse(text);
  assert.deepEqual(i!.desired, {
    spec: { tags: { Env: 'prod', Team: 'web' }, state: 'running', securityGroupIds: ['sg-0123'] },
  });
  assert.deepEqual(g!.desired, {
    spec: {
      tags: { Env: 'prod' },
      ingress: [{ protocol: 'tcp', fromPort: 443, toPort: 443, cidr: '0.0.0.0/0' }],
    },
  });
  assert.equal(parse(group('  selector: { groupName: web, vpcId: vpc-1 }\n')).length, 1);
});

test('Ec2Instance: every field normalised; sets sorted; tags always present', () => {
  const [r] = parse(
    instance(`  selector: { tags: { Name: web-1 } }
  instanceType: t3.small
  securityGroupIds: [sg-bbb, sg-aaa]
  sourceDestCheck: false
  disableApiTermination: true
`),
  );
  assert.deepEqual(r!.desired, {
    spec: {
      tags: {},
      instanceType: 't3.small',
      securityGroupIds: ['sg-aaa', 'sg-bbb'],
      sourceDestCheck: false,
      disableApiTermination: true,
    },
  });
  assert.deepEqual(ec2InstanceKind.disruptive, ['/spec/instanceType']);
  assert.equal(ec2InstanceKind.settleMs, 5000);
});

test('Ec2Instance bad input: a specific file:line:col message each', () => {
  const cases: Array<[string, string, string[]]> = [
    [
      'unknown field',
      instance('  selector: { instanceId: i-0abc }\n  instanceTyp: t3.micro\n'),
      [
        'x.yaml:6:3: unknown field "spec.instanceTyp"; allowed: selector, tags, state, instanceType, securityGroupIds, sourceDestCheck, disableApiTermination',
      ],
    ],
    [
      'no selector',
      instance('  state: running\n'),
      ['x.yaml:5:3: spec.selector is required: { instanceId: i-… } or { tags: { Name: … } }'],
    ],
    [
      'both selector forms',
      instance('  selector: { instanceId: i-0abc, tags: { Name: a } }\n'),
      [
        'x.yaml:5:13: spec.selector must be { instanceId: i-… } or { tags: { Name: … } }: exactly one of them, not both',
      ],
    ],
    [
      'empty tag selector',
      instance('  selector: { tags: {} }\n'),
      ['x.yaml:5:21: spec.selector.tags must name at least one tag'],
    ],
    [
      'bad instance id',
      instance('  selector: { instanceId: web-1 }\n'),
      [
        'x.yaml:5:27: spec.selector.instanceId must be an instance id such as i-0123456789abcdef0, got string "web-1"',
      ],
    ],
    [
      'bad state',
      instance('  selector: { instanceId: i-0abc }\n  state: terminated\n'),
      ['x.yaml:6:10: spec.state must be "running" or "stopped", got string "terminated"'],
    ],
    [
      'tags not a map',
      instance('  selector: { instanceId: i-0abc }\n  tags: [Env=prod]\n'),
      [
        'x.yaml:6:9: spec.tags must be a map of tag names to string values, such as { Env: prod }, got a list',
      ],
    ],
    [
      'tag value not a string',
      instance('  selector: { instanceId: i-0abc }\n  tags: { Count: 3 }\n'),
      ['x.yaml:6:18: spec.tags.Count must be a string, got number 3 (quote it: "3")'],
    ],
    [
      'reserved tag',
      instance('  selector: { instanceId: i-0abc }\n  tags: { "aws:owner": me }\n'),
      [
        'x.yaml:6:12: spec.tags.aws:owner: tag names starting with "aws:" are reserved by AWS and cannot be set',
      ],
    ],
    [
      'security group ids',
      instance('  selector: { instanceId: i-0abc }\n  securityGroupIds: [sg-0a, web, sg-0a]\n'),
      [
        'x.yaml:6:29: spec.securityGroupIds[1] must be a security group id such as sg-0123456789abcdef0, got string "web"',
        'x.yaml:6:34: spec.securityGroupIds[2] repeats sg-0a (also at [0]); it is a set',
      ],
    ],
    [
      'empty security group set',
      instance('  selector: { instanceId: i-0abc }\n  securityGroupIds: []\n'),
      [
        'x.yaml:6:21: spec.securityGroupIds must be a non-empty list of security group ids (an instance always has at least one), got a list',
      ],
    ],
    [
      'boolean as string',
      instance('  selector: { instanceId: i-0abc }\n  sourceDestCheck: "no"\n'),
      ['x.yaml:6:21: spec.sourceDestCheck must be true or false, got string "no"'],
    ],
  ];
  const wrong = cases.flatMap(([what, text, expected]) => {
    const got = problems(text);
    return JSON.stringify(got) === JSON.stringify(expected)
      ? []
      : [`${what}:\n  got      ${got.join('\n           ')}\n  expected ${expected.join('\n           ')}`];
  });
  assert.deepEqual(wrong, []);
});

test('two manifests with one selector are rejected', () => {
  const got = problems(instance('  selector: { instanceId: i-0abc }\n', 'a'), {
    'y.yaml': instance('  selector: { instanceId: i-0abc }\n', 'b'),
  });
  assert.deepEqual(got, [
    'y.yaml:5:13: spec.selector {instanceId: "i-0abc"} is already used by Ec2Instance/a (x.yaml:1:1)',
  ]);
});

test('SecurityGroup: rules normalised (protocol names, CIDR spelling, order) and sorted', () => {
  const [r] = parse(
    group(`  selector: { groupId: sg-0abc }
  ingress:
    - { protocol: udp, fromPort: 53, toPort: 53, cidr: "2001:DB8:0:0::/64" }
    - { protocol: tcp, fromPort: 443, toPort: 443, cidr: 10.0.0.0/8, description: https }
    - { protocol: -1, sourceGroupId: sg-0def }
    - { protocol: icmp, fromPort: 8, cidr: 0.0.0.0/0 }
  egress: []
`),
  );
  assert.deepEqual(r!.desired, {
    spec: {
      tags: {},
      ingress: [
        { protocol: 'all', sourceGroupId: 'sg-0def' },
        { protocol: 'icmp', fromPort: 8, toPort: -1, cidr: '0.0.0.0/0' },
        { protocol: 'tcp', fromPort: 443, toPort: 443, cidr: '10.0.0.0/8', description: 'https' },
        { protocol: 'udp', fromPort: 53, toPort: 53, cidr: '2001:db8::/64' },
      ],
      egress: [],
    },
  });
});

test('SecurityGroup bad input: malformed CIDR, port ranges, protocols, selectors', () => {
  const rule = (r: string) => group(`  selector: { groupId: sg-0abc }\n  ingress:\n    - ${r}\n`);
  const cases: Array<[string, string, string[]]> = [
    [
      'malformed CIDR',
      rule('{ protocol: tcp, fromPort: 22, toPort: 22, cidr: 10.0.0.300/32 }'),
      [
        'x.yaml:7:56: spec.ingress[0].cidr "10.0.0.300/32" is not a valid IPv4 or IPv6 CIDR block: it has an invalid IPv4 address "10.0.0.300"',
      ],
    ],
    [
      'CIDR without prefix',
      rule('{ protocol: tcp, fromPort: 22, toPort: 22, cidr: 10.0.0.1 }'),
      [
        'x.yaml:7:56: spec.ingress[0].cidr "10.0.0.1" is not a valid IPv4 or IPv6 CIDR block: it needs a prefix length, e.g. 10.0.0.0/8 or 203.0.113.7/32',
      ],
    ],
    [
      'host bits set',
      rule('{ protocol: tcp, fromPort: 22, toPort: 22, cidr: 10.1.2.3/8 }'),
      [
        'x.yaml:7:56: spec.ingress[0].cidr "10.1.2.3/8" is not a valid IPv4 or IPv6 CIDR block: it has host bits set; the network is 10.0.0.0/8',
      ],
    ],
    [
      'bad IPv6 prefix',
      rule('{ protocol: tcp, fromPort: 22, toPort: 22, cidr: "::/129" }'),
      [
        'x.yaml:7:57: spec.ingress[0].cidr "::/129" is not a valid IPv4 or IPv6 CIDR block: it has an invalid prefix length "/129" (0-128 for IPv6)',
      ],
    ],
    [
      'reversed port range',
      rule('{ protocol: tcp, fromPort: 443, toPort: 80, cidr: 0.0.0.0/0 }'),
      ['x.yaml:7:47: spec.ingress[0] has fromPort 443 above toPort 80; a port range runs from low to high'],
    ],
    [
      'port out of range',
      rule('{ protocol: udp, fromPort: 0, toPort: 70000, cidr: 0.0.0.0/0 }'),
      ['x.yaml:7:45: spec.ingress[0].toPort must be a port number 0-65535, got number 70000'],
    ],
    [
      'ports missing for tcp',
      rule('{ protocol: tcp, cidr: 0.0.0.0/0 }'),
      [
        'x.yaml:7:7: spec.ingress[0].fromPort is required for tcp',
        'x.yaml:7:7: spec.ingress[0].toPort is required for tcp',
      ],
    ],
    [
      'ports with all',
      rule('{ protocol: all, fromPort: 1, toPort: 2, cidr: 0.0.0.0/0 }'),
      [
        'x.yaml:7:34: spec.ingress[0].fromPort makes no sense with protocol all (all ports); remove it',
        'x.yaml:7:45: spec.ingress[0].toPort makes no sense with protocol all (all ports); remove it',
      ],
    ],
    [
      'unknown protocol',
      rule('{ protocol: TCP, fromPort: 1, toPort: 2, cidr: 0.0.0.0/0 }'),
      ['x.yaml:7:19: spec.ingress[0].protocol must be one of tcp, udp, icmp, all (or -1), got string "TCP"'],
    ],
    [
      'two peers',
      rule('{ protocol: all, cidr: 0.0.0.0/0, sourceGroupId: sg-0a }'),
      [
        'x.yaml:7:7: spec.ingress[0] needs exactly one of cidr, sourceGroupId, prefixListId (got cidr, sourceGroupId)',
      ],
    ],
    [
      'unknown rule field',
      rule('{ protocol: all, cidr: 0.0.0.0/0, port: 22 }'),
      [
        'x.yaml:7:41: unknown field "spec.ingress.0.port"; allowed: protocol, fromPort, toPort, cidr, sourceGroupId, prefixListId, description',
      ],
    ],
    [
      'duplicate rule',
      group(
        '  selector: { groupId: sg-0abc }\n  egress:\n    - { protocol: all, cidr: 0.0.0.0/0 }\n    - { protocol: -1, cidr: 0.0.0.0/0, description: again }\n',
      ),
      [
        'x.yaml:8:7: spec.egress[1] repeats the rule "all * from 0.0.0.0/0" of spec.egress[0]; a rule appears once (AWS keeps one description per rule)',
      ],
    ],
    [
      'rules not a list',
      group('  selector: { groupId: sg-0abc }\n  ingress: { protocol: all }\n'),
      ['x.yaml:6:12: spec.ingress must be a list of rules (write [] for none), got a mapping'],
    ],
    [
      'name without VPC',
      group('  selector: { groupName: web }\n'),
      [
        'x.yaml:5:13: spec.selector.vpcId is required with groupName (a group name is unique only within its VPC)',
      ],
    ],
    [
      'id and name',
      group('  selector: { groupId: sg-0abc, groupName: web, vpcId: vpc-1 }\n'),
      ['x.yaml:5:13: spec.selector must be { groupId: sg-… } or { groupName: …, vpcId: vpc-… }, not both'],
    ],
    [
      'unknown SG field',
      group('  selector: { groupId: sg-0abc }\n  rules: []\n'),
      ['x.yaml:6:3: unknown field "spec.rules"; allowed: selector, tags, ingress, egress'],
    ],
  ];
  const wrong = cases.flatMap(([what, text, expected]) => {
    const got = problems(text);
    return JSON.stringify(got) === JSON.stringify(expected)
      ? []
      : [`${what}:\n  got      ${got.join('\n           ')}\n  expected ${expected.join('\n           ')}`];
  });
  assert.deepEqual(wrong, []);
});

test('removal: tags Git dropped are removed; sets and scalars dropped from Git are released', () => {
  const observed = {
    spec: {
      instanceId: 'i-0abc',
      tags: { Env: 'prod', Team: 'web', Other: 'theirs' },
      state: 'running',
      securityGroupIds: ['sg-0a'],
    },
  };
  const last = {
    spec: { tags: { Env: 'prod', Team: 'web' }, state: 'running', securityGroupIds: ['sg-0a'] },
  };
  const desired = { spec: { tags: { Env: 'prod' } } };
  assert.deepEqual(diffOwned(ec2InstanceKind, desired, observed, last), [
    { op: 'remove', path: '/spec/tags/Team' },
  ]);
  // Git drops every tag: each one steward applied is removed, never the one someone else set.
  assert.deepEqual(diffOwned(ec2InstanceKind, { spec: { tags: {} } }, observed, last), [
    { op: 'remove', path: '/spec/tags/Team' },
    { op: 'remove', path: '/spec/tags/Env' },
  ]);
  assert.equal(securityGroupKind.removable('/spec/ingress'), false);
  assert.equal(securityGroupKind.removable('/spec/tags/Env'), true);
});

test('sets are compared whole and in canonical order: reordering is not drift, an extra member is', () => {
  const desired = { spec: { tags: {}, securityGroupIds: ['sg-0a', 'sg-0b'] } };
  const same = { spec: { tags: { X: '1' }, securityGroupIds: ['sg-0a', 'sg-0b'] } };
  assert.deepEqual(diffOwned(ec2InstanceKind, desired, same), []);
  const extra = { spec: { tags: {}, securityGroupIds: ['sg-0a', 'sg-0b', 'sg-0c'] } };
  assert.deepEqual(diffOwned(ec2InstanceKind, desired, extra), [
    { op: 'remove', path: '/spec/securityGroupIds/2' },
  ]);
});
