/** CIDR parsing and security-group rules: canonical forms, AWS round trips, set differences. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCidr } from '../../../providers/aws-ec2/cidr.js';
import { diffRules, rulesFromAws, ruleToAws } from '../../../providers/aws-ec2/rules.js';

test('CIDR: canonical spellings, strict parsing', () => {
  const ok: Array<[string, string]> = [
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['203.0.113.7/32', '203.0.113.7/32'],
    ['::/0', '::/0'],
    ['2001:DB8::/32', '2001:db8::/32'],
    ['2001:0db8:0000:0000:0000:0000:0000:0000/64', '2001:db8::/64'],
    ['2001:db8:0:1:0:0:0:0/64', '2001:db8:0:1::/64'],
    ['fe80:0:0:1:0:0:1:0/128', 'fe80::1:0:0:1:0/128'],
    ['::ffff:10.0.0.0/104', '::ffff:a00:0/104'],
  ];
  for (const [input, want] of ok)
    assert.deepEqual(parseCidr(input), { ok: true, cidr: want, family: input.includes(':') ? 6 : 4 }, input);
  const bad = [
    '10.0.0.0',
    '10.0.0.0/33',
    '10.0.0/8',
    '010.0.0.0/8',
    '10.0.0.256/32',
    '1.2.3.4/8',
    '::1::/64',
    '2001:db8::/x',
    'abc/1',
    '/8',
    '10.0.0.0/08',
  ];
  for (const b of bad) assert.equal(parseCidr(b).ok, false, b);
});

test('rules read from AWS: one rule per peer, numeric protocols named, sorted, descriptions kept', () => {
  const rules = rulesFromAws([
    {
      IpProtocol: '6',
      FromPort: 443,
      ToPort: 443,
      IpRanges: [{ CidrIp: '10.0.0.0/8' }, { CidrIp: '0.0.0.0/0', Description: 'https' }],
      Ipv6Ranges: [{ CidrIpv6: '2001:DB8::/32' }],
      UserIdGroupPairs: [{ GroupId: 'sg-0b', UserId: '123456789012' }],
      PrefixListIds: [{ PrefixListId: 'pl-0a' }],
    },
    { IpProtocol: '-1', FromPort: -1, ToPort: -1, IpRanges: [{ CidrIp: '0.0.0.0/0' }] },
    { IpProtocol: '50', IpRanges: [{ CidrIp: '192.0.2.0/24' }] },
  ]);
  assert.deepEqual(rules, [
    { protocol: '50', cidr: '192.0.2.0/24' },
    { protocol: 'all', cidr: '0.0.0.0/0' },
    { protocol: 'tcp', fromPort: 443, toPort: 443, cidr: '0.0.0.0/0', description: 'https' },
    { protocol: 'tcp', fromPort: 443, toPort: 443, cidr: '10.0.0.0/8' },
    { protocol: 'tcp', fromPort: 443, toPort: 443, cidr: '2001:db8::/32' },
    { protocol: 'tcp', fromPort: 443, toPort: 443, prefixListId: 'pl-0a' },
    { protocol: 'tcp', fromPort: 443, toPort: 443, sourceGroupId: 'sg-0b' },
  ]);
});

test('rules written to AWS: the right peer list, -1 for all, description only when asked', () => {
  assert.deepEqual(ruleToAws({ protocol: 'all', cidr: '::/0', description: 'x' }), {
    IpProtocol: '-1',
    Ipv6Ranges: [{ CidrIpv6: '::/0', Description: 'x' }],
  });
  assert.deepEqual(
    ruleToAws({ protocol: 'tcp', fromPort: 22, toPort: 22, sourceGroupId: 'sg-0a', description: 'x' }, false),
    {
      IpProtocol: 'tcp',
      FromPort: 22,
      ToPort: 22,
      UserIdGroupPairs: [{ GroupId: 'sg-0a' }],
    },
  );
  assert.deepEqual(ruleToAws({ protocol: 'icmp', fromPort: -1, toPort: -1, prefixListId: 'pl-0a' }), {
    IpProtocol: 'icmp',
    FromPort: -1,
    ToPort: -1,
    PrefixListIds: [{ PrefixListId: 'pl-0a' }],
  });
});

test('rule set differences: add, revoke, and a description change is an update, not a replace', () => {
  const ssh = { protocol: 'tcp', fromPort: 22, toPort: 22, cidr: '10.0.0.0/8' };
  const web = { protocol: 'tcp', fromPort: 443, toPort: 443, cidr: '0.0.0.0/0' };
  const wide = { protocol: 'tcp', fromPort: 0, toPort: 65535, cidr: '0.0.0.0/0' };
  assert.deepEqual(diffRules([ssh, wide], [ssh, { ...web, description: 'https' }]), {
    add: [{ ...web, description: 'https' }],
    remove: [wide],
    describe: [],
  });
  assert.deepEqual(diffRules([{ ...ssh, description: 'old' }], [ssh]), {
    add: [],
    remove: [],
    describe: [ssh],
  });
  assert.deepEqual(diffRules([ssh], [ssh]), { add: [], remove: [], describe: [] });
});
