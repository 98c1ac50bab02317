/** Selector matching grows linearly with the fleet (counted candidates, never time). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Instance } from '@aws-sdk/client-ec2';
import {
  indexGroups,
  indexInstances,
  matchGroups,
  matchInstances,
  type MatchCounter,
} from '../../../providers/aws-ec2/match.js';

function fleet(n: number): Instance[] {
  return Array.from({ length: n }, (_, i) => ({
    InstanceId: `i-${i.toString(16).padStart(17, '0')}`,
    Tags: [
      { Key: 'Name', Value: `web-${i}` },
      { Key: 'Env', Value: i % 2 ? 'prod' : 'staging' },
      { Key: 'Team', Value: 'web' },
    ],
  }));
}

/** Every instance selected by its Name and Env tags (as manifests do), counting the candidates checked. */
function matchAll(n: number): MatchCounter {
  const instances = fleet(n);
  const index = indexInstances(instances);
  const counter: MatchCounter = { compared: 0 };
  for (let i = 0; i < n; i++) {
    const m = matchInstances(
      index,
      { tags: { Team: 'web', Name: `web-${i}`, Env: i % 2 ? 'prod' : 'staging' } },
      counter,
    );
    assert.equal(m.length, 1);
    assert.equal(m[0]!.InstanceId, instances[i]!.InstanceId);
  }
  return counter;
}

test('matching 10k and 20k tag selectors checks a number of candidates linear in the fleet', () => {
  const at10k = matchAll(10_000).compared;
  const at20k = matchAll(20_000).compared;
  // One candidate per selector (the shortest posting list is the unique Name tag); all-pairs would be N².
  assert.equal(at10k, 10_000);
  assert.equal(at20k, 20_000);
  assert.equal(at20k / at10k, 2, 'twice the fleet, twice the work');
});

test('matching keeps its meaning: all tags must match, by id, none, several', () => {
  const index = indexInstances(fleet(10));
  assert.equal(matchInstances(index, { tags: { Team: 'web' } }).length, 10);
  assert.equal(matchInstances(index, { tags: { Team: 'web', Env: 'prod' } }).length, 5);
  assert.equal(matchInstances(index, { tags: { Name: 'web-3', Env: 'prod' } }).length, 1);
  assert.equal(matchInstances(index, { tags: { Name: 'web-3', Env: 'staging' } }).length, 0);
  assert.equal(matchInstances(index, { tags: { Name: 'nope' } }).length, 0);
  assert.equal(
    matchInstances(index, { instanceId: 'i-00000000000000003' })[0]?.InstanceId,
    'i-00000000000000003',
  );
  assert.deepEqual(matchInstances(index, { instanceId: 'i-missing' }), []);
  const groups = indexGroups([
    { GroupId: 'sg-1', GroupName: 'web', VpcId: 'vpc-1' },
    { GroupId: 'sg-2', GroupName: 'web', VpcId: 'vpc-2' },
  ]);
  assert.equal(matchGroups(groups, { groupName: 'web', vpcId: 'vpc-2' })[0]?.GroupId, 'sg-2');
  assert.equal(matchGroups(groups, { groupId: 'sg-1' })[0]?.GroupName, 'web');
  assert.deepEqual(matchGroups(groups, { groupName: 'web', vpcId: 'vpc-3' }), []);
});
