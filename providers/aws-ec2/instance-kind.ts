/**
 * `kind: Ec2Instance` — an existing EC2 instance, found by its selector.
 *
 *   spec:
 *     selector: { instanceId: i-0123456789abcdef0 }   # or { tags: { Name: web-1 } }
 *     tags: { Env: prod }
 *     state: running                                   # running | stopped
 *     instanceType: t3.small                           # disruptive: reported unless fieldPolicy says revert
 *     securityGroupIds: [sg-0123456789abcdef0]         # a set, owned as a whole
 *     sourceDestCheck: true
 *     disableApiTermination: true
 *
 * The selector is identity, never owned. steward never creates or terminates
 * an instance: a selector that matches no instance (or several) is an error
 * for that resource, and nothing is done to it.
 *
 * Owned document (only the fields the manifest sets, plus `tags`, which is
 * always present — `{}` owns nothing — so that tags removed from Git can be
 * deleted key by key):
 *
 *   { spec: { tags: {K: V}, state, instanceType, securityGroupIds: [sorted ids],
 *             sourceDestCheck, disableApiTermination } }
 */
import { describeType, isPlainObject } from '../../core/object.js';
import { duplicateIdentities, unknownKeys } from '../spec-check.js';
import type { DesiredResource, KindDefinition, OwnedDoc, SpecProblem } from '../types.js';
import { SG_ID } from './rules.js';
import { tagMap, validateTags } from './tags.js';

export const INSTANCE_KIND = 'Ec2Instance';
const INSTANCE_FIELDS = [
  'selector',
  'tags',
  'state',
  'instanceType',
  'securityGroupIds',
  'sourceDestCheck',
  'disableApiTermination',
] as const;
const INSTANCE_ID = /^i-[0-9a-f]+$/;
const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9-]+$/;

/** Eventual consistency of the EC2 API: a read right after a write may show the old value. */
export const EC2_SETTLE_MS = 5_000;

export type InstanceSelector = { instanceId: string } | { tags: Record<string, string> };

function validateSelector(v: unknown): SpecProblem[] {
  const at = ['spec', 'selector'];
  const shapes = '{ instanceId: i-… } or { tags: { Name: … } }';
  const forms = `spec.selector must be ${shapes}`;
  if (v === undefined) return [{ path: ['spec'], message: `spec.selector is required: ${shapes}` }];
  if (!isPlainObject(v)) return [{ path: at, message: `${forms}, got ${describeType(v)}` }];
  const problems = unknownKeys(v, ['instanceId', 'tags'], at);
  const given = (['instanceId', 'tags'] as const).filter((k) => v[k] !== undefined);
  if (given.length !== 1)
    problems.push({
      path: at,
      message: `${forms}: exactly one of them${given.length > 1 ? `, not both` : ''}`,
    });
  const id = v['instanceId'];
  if (id !== undefined && (typeof id !== 'string' || !INSTANCE_ID.test(id)))
    problems.push({
      path: [...at, 'instanceId'],
      message: `spec.selector.instanceId must be an instance id such as i-0123456789abcdef0, got ${describeType(id)}`,
    });
  if (v['tags'] !== undefined) problems.push(...validateTags(v['tags'], [...at, 'tags'], { nonEmpty: true }));
  return problems;
}

function validate(spec: unknown): SpecProblem[] {
  if (!isPlainObject(spec))
    return [{ path: ['spec'], message: `spec must be a mapping, got ${describeType(spec)}` }];
  const problems = unknownKeys(spec, INSTANCE_FIELDS, ['spec']);
  problems.push(...validateSelector(spec['selector']));
  const { tags, state, instanceType, securityGroupIds } = spec;
  if (tags !== undefined) problems.push(...validateTags(tags, ['spec', 'tags']));
  if (state !== undefined && state !== 'running' && state !== 'stopped')
    problems.push({
      path: ['spec', 'state'],
      message: `spec.state must be "running" or "stopped", got ${describeType(state)}`,
    });
  if (instanceType !== undefined && (typeof instanceType !== 'string' || !INSTANCE_TYPE.test(instanceType)))
    problems.push({
      path: ['spec', 'instanceType'],
      message: `spec.instanceType must be an instance type such as t3.micro, got ${describeType(instanceType)}`,
    });
  if (securityGroupIds !== undefined) {
    if (!Array.isArray(securityGroupIds) || securityGroupIds.length === 0)
      problems.push({
        path: ['spec', 'securityGroupIds'],
        message: `spec.securityGroupIds must be a non-empty list of security group ids (an instance always has at least one), got ${describeType(securityGroupIds)}`,
      });
    else {
      const seen = new Map<string, number>();
      for (const [i, g] of securityGroupIds.entries()) {
        if (typeof g !== 'string' || !SG_ID.test(g))
          problems.push({
            path: ['spec', 'securityGroupIds', i],
            message: `spec.securityGroupIds[${i}] must be a security group id such as sg-0123456789abcdef0, got ${describeType(g)}`,
          });
        else if (seen.has(g))
          problems.push({
            path: ['spec', 'securityGroupIds', i],
            message: `spec.securityGroupIds[${i}] repeats ${g} (also at [${seen.get(g)}]); it is a set`,
          });
        else seen.set(g, i);
      }
    }
  }
  for (const k of ['sourceDestCheck', 'disableApiTermination'] as const)
    if (spec[k] !== undefined && typeof spec[k] !== 'boolean')
      problems.push({
        path: ['spec', k],
        message: `spec.${k} must be true or false, got ${describeType(spec[k])}`,
      });
  return problems;
}

function toDesired(spec: Readonly<Record<string, unknown>>): OwnedDoc {
  const out: Record<string, unknown> = { tags: tagMap(spec['tags']) };
  if (typeof spec['state'] === 'string') out['state'] = spec['state'];
  if (typeof spec['instanceType'] === 'string') out['instanceType'] = spec['instanceType'];
  if (Array.isArray(spec['securityGroupIds']))
    out['securityGroupIds'] = [...new Set(spec['securityGroupIds'] as string[])].sort();
  for (const k of ['sourceDestCheck', 'disableApiTermination'] as const)
    if (typeof spec[k] === 'boolean') out[k] = spec[k];
  return { spec: out };
}

/** The selector of a valid spec. */
export function instanceSelector(spec: Readonly<Record<string, unknown>>): InstanceSelector {
  const sel = spec['selector'] as Record<string, unknown>;
  return typeof sel['instanceId'] === 'string'
    ? { instanceId: sel['instanceId'] }
    : { tags: tagMap(sel['tags']) };
}

/** Human-readable selector, for messages: `{instanceId: i-…}` or `{tags: {Name: web-1}}`. */
export function describeSelector(sel: InstanceSelector | Record<string, unknown>): string {
  return JSON.stringify(sel).replace(/"([^"]+)":/g, '$1: ');
}

/** Two manifests with the same selector would fight over one instance. */
function validateAll(resources: readonly DesiredResource[]) {
  return duplicateIdentities(
    resources,
    INSTANCE_KIND,
    (r) => describeSelector(instanceSelector(r.spec)),
    ['spec', 'selector'],
    (sel, first) => `spec.selector ${sel} is already used by ${first}`,
  );
}

export const ec2InstanceKind: KindDefinition = {
  kind: INSTANCE_KIND,
  provider: 'aws-ec2',
  validate,
  toDesired,
  /** Tags that steward applied and Git no longer sets are deleted; scalars and sets are released. */
  removable: (path) => path.startsWith('/spec/tags/'),
  disruptive: ['/spec/instanceType'],
  settleMs: EC2_SETTLE_MS,
  validateAll,
};
