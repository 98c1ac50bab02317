/**
 * `kind: SecurityGroup` — an existing security group, found by its selector.
 *
 *   spec:
 *     selector: { groupId: sg-0123456789abcdef0 }     # or { groupName: web, vpcId: vpc-0123… }
 *     tags: { Env: prod }
 *     ingress:
 *       - { protocol: tcp, fromPort: 443, toPort: 443, cidr: 0.0.0.0/0, description: https }
 *     egress: []
 *
 * The selector is identity, never owned; steward does not create or delete
 * groups. `ingress` / `egress`, when set, own the WHOLE rule set: a rule that
 * is not in Git is revoked, including one that someone added by hand (that is
 * what makes a widened rule drift). Leave the field out to leave the rules
 * alone. Rules are held as a sorted canonical list (see rules.ts).
 *
 * Owned document: `{ spec: { tags: {K: V}, ingress: [Rule…], egress: [Rule…] } }`
 * (`tags` always present, the rule sets only when the manifest sets them).
 */
import { describeType, isPlainObject } from '../../core/object.js';
import { duplicateIdentities, unknownKeys } from '../spec-check.js';
import type { DesiredResource, KindDefinition, OwnedDoc, SpecProblem } from '../types.js';
import { EC2_SETTLE_MS, describeSelector } from './instance-kind.js';
import { SG_ID, rulesFromSpec, validateRules } from './rules.js';
import { tagMap, validateTags } from './tags.js';

export const SG_KIND = 'SecurityGroup';
const SG_FIELDS = ['selector', 'tags', 'ingress', 'egress'] as const;
const VPC_ID = /^vpc-[0-9a-f]+$/;

export type GroupSelector = { groupId: string } | { groupName: string; vpcId: string };

function validateSelector(v: unknown): SpecProblem[] {
  const at = ['spec', 'selector'];
  const shapes = '{ groupId: sg-… } or { groupName: …, vpcId: vpc-… }';
  if (v === undefined) return [{ path: ['spec'], message: `spec.selector is required: ${shapes}` }];
  if (!isPlainObject(v))
    return [{ path: at, message: `spec.selector must be ${shapes}, got ${describeType(v)}` }];
  const problems = unknownKeys(v, ['groupId', 'groupName', 'vpcId'], at);
  const { groupId, groupName, vpcId } = v;
  if (groupId !== undefined && (groupName !== undefined || vpcId !== undefined))
    problems.push({ path: at, message: `spec.selector must be ${shapes}, not both` });
  else if (groupId === undefined && groupName === undefined)
    problems.push({ path: at, message: `spec.selector must be ${shapes}` });
  else if (groupName !== undefined && vpcId === undefined)
    problems.push({
      path: at,
      message: 'spec.selector.vpcId is required with groupName (a group name is unique only within its VPC)',
    });
  if (groupId !== undefined && (typeof groupId !== 'string' || !SG_ID.test(groupId)))
    problems.push({
      path: [...at, 'groupId'],
      message: `spec.selector.groupId must be a security group id such as sg-0123456789abcdef0, got ${describeType(groupId)}`,
    });
  if (
    groupName !== undefined &&
    (typeof groupName !== 'string' || groupName.length === 0 || groupName.length > 255)
  )
    problems.push({
      path: [...at, 'groupName'],
      message: `spec.selector.groupName must be a group name of 1-255 characters, got ${describeType(groupName)}`,
    });
  if (vpcId !== undefined && (typeof vpcId !== 'string' || !VPC_ID.test(vpcId)))
    problems.push({
      path: [...at, 'vpcId'],
      message: `spec.selector.vpcId must be a VPC id such as vpc-0123456789abcdef0, got ${describeType(vpcId)}`,
    });
  return problems;
}

function validate(spec: unknown): SpecProblem[] {
  if (!isPlainObject(spec))
    return [{ path: ['spec'], message: `spec must be a mapping, got ${describeType(spec)}` }];
  const problems = unknownKeys(spec, SG_FIELDS, ['spec']);
  problems.push(...validateSelector(spec['selector']));
  if (spec['tags'] !== undefined) problems.push(...validateTags(spec['tags'], ['spec', 'tags']));
  for (const f of ['ingress', 'egress'] as const)
    if (spec[f] !== undefined) problems.push(...validateRules(spec[f], f));
  return problems;
}

function toDesired(spec: Readonly<Record<string, unknown>>): OwnedDoc {
  const out: Record<string, unknown> = { tags: tagMap(spec['tags']) };
  for (const f of ['ingress', 'egress'] as const)
    if (Array.isArray(spec[f])) out[f] = rulesFromSpec(spec[f] as unknown[]);
  return { spec: out };
}

/** The selector of a valid spec. */
export function groupSelector(spec: Readonly<Record<string, unknown>>): GroupSelector {
  const sel = spec['selector'] as Record<string, string>;
  return sel['groupId'] !== undefined
    ? { groupId: sel['groupId'] }
    : { groupName: sel['groupName']!, vpcId: sel['vpcId']! };
}

function validateAll(resources: readonly DesiredResource[]) {
  return duplicateIdentities(
    resources,
    SG_KIND,
    (r) => describeSelector(groupSelector(r.spec)),
    ['spec', 'selector'],
    (sel, first) => `spec.selector ${sel} is already used by ${first}`,
  );
}

export const securityGroupKind: KindDefinition = {
  kind: SG_KIND,
  provider: 'aws-ec2',
  validate,
  toDesired,
  /** Tags that steward applied and Git no longer sets are deleted; a rule set dropped from Git is released. */
  removable: (path) => path.startsWith('/spec/tags/'),
  disruptive: [],
  settleMs: EC2_SETTLE_MS,
  validateAll,
};
