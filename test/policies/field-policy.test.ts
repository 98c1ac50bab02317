import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Operation } from 'fast-json-patch';
import { classifyPatch, isAtOrUnder, policyForPath } from '../../policies/field-policy.js';
import type { FieldPolicy, GuardrailConfig } from '../../policies/types.js';

const patch: Operation[] = [
  { op: 'replace', path: '/spec/instanceType', value: 't3.large' },
  { op: 'replace', path: '/spec/tags/Env', value: 'prod' },
  { op: 'add', path: '/spec/tags/Owner', value: 'web' },
  { op: 'remove', path: '/spec/tags/Old' },
  { op: 'replace', path: '/spec/state', value: 'running' },
];
const ALL = patch.map((op) => op.path);
const DISRUPTIVE = ['/spec/instanceType'];

const cases: Array<{
  name: string;
  patch?: Operation[];
  resourcePolicy?: FieldPolicy;
  disruptive?: string[];
  config?: GuardrailConfig['fieldPolicy'];
  report: string[];
}> = [
  { name: 'no policy at all: everything reverts', report: [] },
  { name: 'disruptive field defaults to report', disruptive: DISRUPTIVE, report: ['/spec/instanceType'] },
  {
    name: 'manifest onDrift: revert does NOT make a disruptive field revert',
    disruptive: DISRUPTIVE,
    resourcePolicy: 'revert',
    report: ['/spec/instanceType'],
  },
  {
    name: 'config revert opts a disruptive field in',
    disruptive: DISRUPTIVE,
    config: { Ec2Instance: { '/spec/instanceType': 'revert' } },
    report: [],
  },
  {
    name: 'config revert on a parent of the disruptive field opts it in (longest config match)',
    disruptive: DISRUPTIVE,
    config: { Ec2Instance: { '/spec': 'revert' } },
    report: [],
  },
  {
    name: 'manifest onDrift: report wins over everything',
    disruptive: DISRUPTIVE,
    resourcePolicy: 'report',
    config: { Ec2Instance: { '/spec/instanceType': 'revert', '/spec/tags': 'revert' } },
    report: ALL,
  },
  {
    name: 'manifest onDrift: revert does NOT override a config report',
    resourcePolicy: 'revert',
    config: { Ec2Instance: { '/spec/tags': 'report' } },
    report: ['/spec/tags/Env', '/spec/tags/Owner', '/spec/tags/Old'],
  },
  {
    name: 'config pointer matches itself and below it',
    config: { Ec2Instance: { '/spec/tags': 'report' } },
    report: ['/spec/tags/Env', '/spec/tags/Owner', '/spec/tags/Old'],
  },
  {
    name: 'prefix matches only on / boundaries',
    config: { Ec2Instance: { '/spec/tag': 'report', '/spec/stat': 'report' } },
    disruptive: ['/spec/instance'],
    report: [],
  },
  {
    name: 'longest config match wins',
    config: { Ec2Instance: { '/spec/tags': 'report', '/spec/tags/Env': 'revert' } },
    report: ['/spec/tags/Owner', '/spec/tags/Old'],
  },
  {
    name: 'longest match wins the other way round',
    config: { Ec2Instance: { '/spec/tags': 'revert', '/spec/tags/Env': 'report' } },
    report: ['/spec/tags/Env'],
  },
  {
    name: 'config of another kind is ignored',
    disruptive: DISRUPTIVE,
    config: { SecurityGroup: { '/spec/instanceType': 'revert', '/spec/tags': 'report' } },
    report: ['/spec/instanceType'],
  },
  {
    name: 'an op on a parent of a report field is reported (it would change that field)',
    patch: [{ op: 'replace', path: '/spec/tags', value: {} }],
    config: { Ec2Instance: { '/spec/tags/Owner': 'report' } },
    report: ['/spec/tags'],
  },
  {
    name: 'an op on a parent of a disruptive field is reported',
    patch: [{ op: 'add', path: '/spec', value: {} }],
    disruptive: DISRUPTIVE,
    report: ['/spec'],
  },
  {
    name: 'an op on a parent of a disruptive field opted in by config reverts',
    patch: [{ op: 'add', path: '/spec', value: {} }],
    disruptive: DISRUPTIVE,
    config: { Ec2Instance: { '/spec/instanceType': 'revert' } },
    report: [],
  },
  {
    name: 'a move is judged by its from as well',
    patch: [{ op: 'move', from: '/spec/instanceType', path: '/spec/other' }],
    disruptive: DISRUPTIVE,
    report: ['/spec/other'],
  },
  {
    name: 'escaped keys: /spec/tags/a does not match the tag "a/b"',
    patch: [{ op: 'add', path: '/spec/tags/a~1b', value: 'v' }],
    config: { Ec2Instance: { '/spec/tags/a': 'report' } },
    report: [],
  },
  { name: 'empty patch', patch: [], disruptive: DISRUPTIVE, report: [] },
];

for (const c of cases) {
  test(`classifyPatch: ${c.name}`, () => {
    const ops = c.patch ?? patch;
    const input = Object.freeze({
      kind: 'Ec2Instance',
      patch: Object.freeze([...ops]) as Operation[],
      resourcePolicy: c.resourcePolicy,
      kindDisruptive: c.disruptive ?? [],
      config: c.config ?? {},
    });
    const out = classifyPatch(input);
    const expectedRevert = ops.map((op) => op.path).filter((p) => !c.report.includes(p));
    assert.deepEqual(
      out.report.map((op) => op.path),
      c.report,
    );
    assert.deepEqual(
      out.revert.map((op) => op.path),
      expectedRevert,
    );
    // every op lands in exactly one list, as the same object
    assert.equal(out.revert.length + out.report.length, ops.length);
    for (const op of [...out.revert, ...out.report]) assert.ok(ops.includes(op));
  });
}

test('isAtOrUnder: boundaries', () => {
  assert.equal(isAtOrUnder('/spec/tags', '/spec/tags'), true);
  assert.equal(isAtOrUnder('/spec/tags/Env', '/spec/tags'), true);
  assert.equal(isAtOrUnder('/spec/tagsX', '/spec/tags'), false);
  assert.equal(isAtOrUnder('/spec', '/spec/tags'), false);
  assert.equal(isAtOrUnder('/spec/tags', ''), true);
});

test('policyForPath: config, then disruptive, then revert', () => {
  assert.equal(policyForPath('/spec/x', {}, []), 'revert');
  assert.equal(policyForPath('/spec/x', {}, ['/spec/x']), 'report');
  assert.equal(policyForPath('/spec/x', { '/spec/x': 'revert' }, ['/spec/x']), 'revert');
  assert.equal(policyForPath('/spec/x/y', { '/spec': 'report' }, []), 'report');
});
