/** Planning the reads (DescribeInstances) and the writes (jobs) of the EC2 provider, without an API. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeJob } from '../../../providers/aws-ec2/apply.js';
import type { InstanceSelector } from '../../../providers/aws-ec2/instance-kind.js';
import { planInstanceQueries } from '../../../providers/aws-ec2/plan.js';
import type { ApplyAction } from '../../../providers/types.js';

const ids = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    key: `Ec2Instance/r${i}`,
    selector: { instanceId: `i-${i.toString(16).padStart(17, '0')}` } as InstanceSelector,
  }));

test('up to 200 selectors: one targeted call with an instance-id filter', () => {
  const plan = planInstanceQueries(ids(200), null);
  assert.equal(plan.mode, 'targeted');
  assert.equal(plan.queries.length, 1);
  assert.equal(plan.queries[0]!.filters[0]!.Name, 'instance-id');
  assert.equal(plan.queries[0]!.filters[0]!.Values!.length, 200);
  assert.equal(plan.queries[0]!.serves.length, 200);
});

test('more than one filtered call would be needed: one paginated scan instead (1000 a page)', () => {
  for (const n of [201, 300, 1000, 5000]) {
    const plan = planInstanceQueries(ids(n), null);
    assert.equal(plan.mode, 'scan', `${n}`);
    assert.deepEqual(plan.queries[0]!.filters, [
      { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
    ]);
    assert.equal(plan.queries[0]!.serves.length, n);
  }
  // The last scan showed 1000 instances: one page, cheaper than two targeted calls.
  assert.equal(planInstanceQueries(ids(300), 1000).mode, 'scan');
});

test('a small fleet in a big region: targeted calls once a scan has shown the region is large', () => {
  const plan = planInstanceQueries(ids(300), 50_000);
  assert.equal(plan.mode, 'targeted');
  assert.deepEqual(
    plan.queries.map((q) => q.filters[0]!.Values!.length),
    [200, 100],
  );
});

test('tag selectors: one tag filter per lookup key (Name first), values shared', () => {
  const sel = (key: string, tags: Record<string, string>) => ({
    key,
    selector: { tags } as InstanceSelector,
  });
  const plan = planInstanceQueries(
    [
      sel('a', { Name: 'web-1', Env: 'prod' }),
      sel('b', { Name: 'web-2' }),
      sel('c', { Role: 'db' }),
      { key: 'd', selector: { instanceId: 'i-0abc' } },
    ],
    null,
  );
  assert.equal(plan.mode, 'scan'); // three calls targeted vs one scan page
  const targeted = planInstanceQueries(
    [sel('a', { Name: 'web-1', Env: 'prod' }), sel('b', { Name: 'web-2' })],
    null,
  );
  assert.deepEqual(targeted, {
    mode: 'targeted',
    queries: [{ filters: [{ Name: 'tag:Name', Values: ['web-1', 'web-2'] }], serves: ['a', 'b'] }],
  });
});

const action = (
  kind: string,
  ops: ApplyAction['ops'],
  desired: Record<string, unknown>,
  observed: Record<string, unknown>,
): ApplyAction => ({
  resource: { key: `${kind}/x`, kind, name: 'x', spec: {}, desired: { spec: desired }, origin: 'x.yaml:1:1' },
  ops,
  observed: { spec: observed },
});

test('a job takes from its operations exactly the fields and tag keys to change', () => {
  const job = makeJob(
    action(
      'Ec2Instance',
      [
        { op: 'replace', path: '/spec/tags/Env', value: 'prod' },
        { op: 'add', path: '/spec/tags/a~1b', value: 'x' },
        { op: 'remove', path: '/spec/tags/Old' },
        { op: 'replace', path: '/spec/state', value: 'running' },
      ],
      { tags: { Env: 'prod', 'a/b': 'x' }, state: 'running', instanceType: 't3.large' },
      { instanceId: 'i-0abc', tags: { Env: 'dev', Old: '1' }, state: 'stopped', instanceType: 't3.micro' },
    ),
  );
  assert.equal(job.id, 'i-0abc');
  assert.deepEqual(job.tagSet, { Env: 'prod', 'a/b': 'x' });
  assert.deepEqual(job.tagDelete, ['Old']);
  // instanceType differs too, but field policy kept its operation out: it is not touched.
  assert.deepEqual([...job.phases], ['tags', 'state']);
});

test('a security group job converges only the rule sets its operations touch', () => {
  const job = makeJob(
    action(
      'SecurityGroup',
      [{ op: 'replace', path: '/spec/ingress/0/cidr', value: '10.0.0.0/8' }],
      { tags: {}, ingress: [], egress: [] },
      { groupId: 'sg-0abc', tags: {}, ingress: [], egress: [] },
    ),
  );
  assert.equal(job.id, 'sg-0abc');
  assert.deepEqual([...job.fields], ['ingress']);
  assert.deepEqual([...job.phases], ['rules']);
});
