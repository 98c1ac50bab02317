/**
 * Security-group rules as one canonical value.
 *
 * A rule is one (protocol, ports, peer) triple plus an optional description:
 * AWS itself identifies a rule by the triple (authorising the same triple
 * twice is a duplicate, whatever the description) and treats the description
 * as an attribute of it. The manifest writes rules as a list; the owned
 * document holds them as a list sorted by {@link compareRules}, so the order
 * in Git or in the API is never drift, and an `ingress` set in Git owns the
 * whole set (see docs/providers/aws-ec2.md, "Sets are authoritative").
 *
 *   { protocol: tcp, fromPort: 443, toPort: 443, cidr: 0.0.0.0/0, description: https }
 *
 * - protocol: `tcp`, `udp`, `icmp` or `all` (`-1` is read as `all`); rules
 *   read from AWS with other protocols keep AWS's name (e.g. `50`).
 * - tcp/udp: fromPort ≤ toPort, both 0-65535, both required.
 * - icmp: fromPort is the ICMP type and toPort the code, -1 meaning any
 *   (both default to -1).
 * - all: no ports.
 * - exactly one peer: `cidr` (IPv4 or IPv6, canonical), `sourceGroupId` or
 *   `prefixListId`.
 */
import type { IpPermission } from '@aws-sdk/client-ec2';
import type { PathSegment } from '../../core/yaml.js';
import { describeType, isPlainObject } from '../../core/object.js';
import { unknownKeys } from '../spec-check.js';
import type { SpecProblem } from '../types.js';
import { canonicalCidr, parseCidr } from './cidr.js';

export interface Rule {
  protocol: string;
  fromPort?: number;
  toPort?: number;
  cidr?: string;
  sourceGroupId?: string;
  prefixListId?: string;
  description?: string;
}

const RULE_FIELDS = [
  'protocol',
  'fromPort',
  'toPort',
  'cidr',
  'sourceGroupId',
  'prefixListId',
  'description',
] as const;
const PROTOCOLS = ['tcp', 'udp', 'icmp', 'all', '-1'] as const;
export const SG_ID = /^sg-[0-9a-f]+$/;
const PL_ID = /^pl-[0-9a-f]+$/;
/** What AWS allows in a rule description. */
const DESCRIPTION = /^[a-zA-Z0-9 ._\-:/()#,@[\]+=&;{}!$*]*$/;

/** AWS's numeric protocol names for the ones steward spells out. */
const PROTOCOL_NAMES: Readonly<Record<string, string>> = {
  '-1': 'all',
  '6': 'tcp',
  '17': 'udp',
  '1': 'icmp',
};

/** The peer of a rule, as text: a CIDR block, a group id or a prefix-list id. */
function peerOf(r: Rule): string {
  return r.cidr ?? r.sourceGroupId ?? r.prefixListId ?? '?';
}

/** The rule's identity (everything but the description), e.g. `tcp 443-443 from 0.0.0.0/0`. */
function ruleKey(r: Rule): string {
  const ports =
    r.fromPort === undefined
      ? '*'
      : r.protocol === 'icmp'
        ? `type ${r.fromPort} code ${r.toPort}`
        : `${r.fromPort}-${r.toPort}`;
  return `${r.protocol} ${ports} from ${peerOf(r)}`;
}

/** Total order on rules: protocol, ports, peer (the description never decides: keys are unique in a set). */
function compareRules(a: Rule, b: Rule): number {
  const s = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return (
    s(a.protocol, b.protocol) ||
    (a.fromPort ?? -2) - (b.fromPort ?? -2) ||
    (a.toPort ?? -2) - (b.toPort ?? -2) ||
    s(peerOf(a), peerOf(b)) ||
    s(a.description ?? '', b.description ?? '')
  );
}

/** Builds a rule with its fields in one fixed order (so documents compare and print alike). */
function makeRule(r: Rule): Rule {
  const out: Rule = { protocol: r.protocol };
  if (r.fromPort !== undefined) out.fromPort = r.fromPort;
  if (r.toPort !== undefined) out.toPort = r.toPort;
  if (r.cidr !== undefined) out.cidr = r.cidr;
  if (r.sourceGroupId !== undefined) out.sourceGroupId = r.sourceGroupId;
  if (r.prefixListId !== undefined) out.prefixListId = r.prefixListId;
  if (r.description !== undefined && r.description !== '') out.description = r.description;
  return out;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** Validates one rule of a manifest; `at` is its path (e.g. ['spec','ingress',0]). */
function validateRule(v: unknown, at: PathSegment[]): SpecProblem[] {
  const name = at.join('.').replace(/\.(\d+)/g, '[$1]');
  if (!isPlainObject(v))
    return [
      {
        path: at,
        message: `${name} must be a mapping such as { protocol: tcp, fromPort: 443, toPort: 443, cidr: 0.0.0.0/0 }, got ${describeType(v)}`,
      },
    ];
  const problems = unknownKeys(v, RULE_FIELDS, at);
  const protocol = v['protocol'] === -1 ? '-1' : v['protocol'];
  if (protocol === undefined) problems.push({ path: at, message: `${name}.protocol is required` });
  else if (typeof protocol !== 'string' || !(PROTOCOLS as readonly string[]).includes(protocol))
    problems.push({
      path: [...at, 'protocol'],
      message: `${name}.protocol must be one of tcp, udp, icmp, all (or -1), got ${describeType(v['protocol'])}`,
    });
  const { fromPort, toPort } = v;
  const proto = protocol === '-1' ? 'all' : protocol;
  if (proto === 'tcp' || proto === 'udp') {
    for (const [k, p] of [
      ['fromPort', fromPort],
      ['toPort', toPort],
    ] as const) {
      if (p === undefined) problems.push({ path: at, message: `${name}.${k} is required for ${proto}` });
      else if (!isInt(p) || p < 0 || p > 65535)
        problems.push({
          path: [...at, k],
          message: `${name}.${k} must be a port number 0-65535, got ${describeType(p)}`,
        });
    }
    if (isInt(fromPort) && isInt(toPort) && fromPort > toPort)
      problems.push({
        path: [...at, 'toPort'],
        message: `${name} has fromPort ${fromPort} above toPort ${toPort}; a port range runs from low to high`,
      });
  } else if (proto === 'icmp') {
    for (const [k, p, what] of [
      ['fromPort', fromPort, 'ICMP type'],
      ['toPort', toPort, 'ICMP code'],
    ] as const)
      if (p !== undefined && (!isInt(p) || p < -1 || p > 255))
        problems.push({
          path: [...at, k],
          message: `${name}.${k} is the ${what} for icmp: -1 (any) or 0-255, got ${describeType(p)}`,
        });
  } else if (proto === 'all') {
    for (const k of ['fromPort', 'toPort'] as const)
      if (v[k] !== undefined)
        problems.push({
          path: [...at, k],
          message: `${name}.${k} makes no sense with protocol ${String(protocol)} (all ports); remove it`,
        });
  }
  const peers = (['cidr', 'sourceGroupId', 'prefixListId'] as const).filter((k) => v[k] !== undefined);
  if (peers.length !== 1)
    problems.push({
      path: at,
      message: `${name} needs exactly one of cidr, sourceGroupId, prefixListId${peers.length > 1 ? ` (got ${peers.join(', ')})` : ''}`,
    });
  const { cidr, sourceGroupId, prefixListId, description } = v;
  if (cidr !== undefined) {
    if (typeof cidr !== 'string')
      problems.push({
        path: [...at, 'cidr'],
        message: `${name}.cidr must be a string, got ${describeType(cidr)}`,
      });
    else {
      const r = parseCidr(cidr);
      if (!r.ok)
        problems.push({
          path: [...at, 'cidr'],
          message: `${name}.cidr "${cidr}" is not a valid IPv4 or IPv6 CIDR block: it ${r.why}`,
        });
    }
  }
  if (sourceGroupId !== undefined && (typeof sourceGroupId !== 'string' || !SG_ID.test(sourceGroupId)))
    problems.push({
      path: [...at, 'sourceGroupId'],
      message: `${name}.sourceGroupId must be a security group id such as sg-0123456789abcdef0, got ${describeType(sourceGroupId)}`,
    });
  if (prefixListId !== undefined && (typeof prefixListId !== 'string' || !PL_ID.test(prefixListId)))
    problems.push({
      path: [...at, 'prefixListId'],
      message: `${name}.prefixListId must be a prefix list id such as pl-0123456789abcdef0, got ${describeType(prefixListId)}`,
    });
  if (description !== undefined) {
    if (typeof description !== 'string' || description.length > 255 || !DESCRIPTION.test(description))
      problems.push({
        path: [...at, 'description'],
        message: `${name}.description must be a string of up to 255 characters from a-z A-Z 0-9 space ._-:/()#,@[]+=&;{}!$*, got ${describeType(description)}`,
      });
  }
  return problems;
}

/** Validates a rule list (`spec.ingress` / `spec.egress`), duplicates included. */
export function validateRules(v: unknown, field: 'ingress' | 'egress'): SpecProblem[] {
  const at = ['spec', field];
  if (!Array.isArray(v))
    return [
      {
        path: at,
        message: `spec.${field} must be a list of rules (write [] for none), got ${describeType(v)}`,
      },
    ];
  const problems: SpecProblem[] = [];
  const seen = new Map<string, number>();
  for (const [i, item] of v.entries()) {
    const p = validateRule(item, [...at, i]);
    problems.push(...p);
    if (p.length > 0) continue;
    const key = ruleKey(ruleFromSpec(item as Record<string, unknown>));
    const first = seen.get(key);
    if (first !== undefined)
      problems.push({
        path: [...at, i],
        message: `spec.${field}[${i}] repeats the rule "${key}" of spec.${field}[${first}]; a rule appears once (AWS keeps one description per rule)`,
      });
    else seen.set(key, i);
  }
  return problems;
}

/** The canonical rule a valid manifest entry asks for. */
function ruleFromSpec(v: Readonly<Record<string, unknown>>): Rule {
  const raw = v['protocol'] === -1 ? '-1' : String(v['protocol']);
  const protocol = raw === '-1' ? 'all' : raw;
  const r: Rule = { protocol };
  if (protocol === 'tcp' || protocol === 'udp') {
    r.fromPort = v['fromPort'] as number;
    r.toPort = v['toPort'] as number;
  } else if (protocol === 'icmp') {
    r.fromPort = (v['fromPort'] as number | undefined) ?? -1;
    r.toPort = (v['toPort'] as number | undefined) ?? -1;
  }
  if (typeof v['cidr'] === 'string') r.cidr = canonicalCidr(v['cidr']);
  if (typeof v['sourceGroupId'] === 'string') r.sourceGroupId = v['sourceGroupId'];
  if (typeof v['prefixListId'] === 'string') r.prefixListId = v['prefixListId'];
  if (typeof v['description'] === 'string') r.description = v['description'];
  return makeRule(r);
}

/** The sorted canonical rule set of a valid manifest list. */
export function rulesFromSpec(list: readonly unknown[]): Rule[] {
  return list.map((x) => ruleFromSpec(x as Record<string, unknown>)).sort(compareRules);
}

/** Explodes AWS's IpPermissions (one entry may carry many peers) into the sorted canonical rule set. */
export function rulesFromAws(perms: readonly IpPermission[] | undefined): Rule[] {
  const out: Rule[] = [];
  for (const p of perms ?? []) {
    const raw = p.IpProtocol ?? '-1';
    const protocol = PROTOCOL_NAMES[raw] ?? raw.toLowerCase();
    const base: Rule = { protocol };
    if (protocol !== 'all' && p.FromPort !== undefined) {
      base.fromPort = p.FromPort;
      base.toPort = p.ToPort ?? p.FromPort;
    }
    const add = (peer: Partial<Rule>, description: string | undefined) =>
      out.push(makeRule({ ...base, ...peer, ...(description ? { description } : {}) }));
    for (const r of p.IpRanges ?? []) if (r.CidrIp) add({ cidr: canonicalCidr(r.CidrIp) }, r.Description);
    for (const r of p.Ipv6Ranges ?? [])
      if (r.CidrIpv6) add({ cidr: canonicalCidr(r.CidrIpv6) }, r.Description);
    for (const r of p.UserIdGroupPairs ?? []) if (r.GroupId) add({ sourceGroupId: r.GroupId }, r.Description);
    for (const r of p.PrefixListIds ?? [])
      if (r.PrefixListId) add({ prefixListId: r.PrefixListId }, r.Description);
  }
  return out.sort(compareRules);
}

/** One rule as an IpPermission for Authorize / Revoke / UpdateDescriptions calls. */
export function ruleToAws(r: Rule, withDescription = true): IpPermission {
  const perm: IpPermission = { IpProtocol: r.protocol === 'all' ? '-1' : r.protocol };
  if (r.fromPort !== undefined) {
    perm.FromPort = r.fromPort;
    perm.ToPort = r.toPort ?? r.fromPort;
  }
  const d = withDescription && r.description !== undefined ? { Description: r.description } : {};
  if (r.cidr !== undefined) {
    if (r.cidr.includes(':')) perm.Ipv6Ranges = [{ CidrIpv6: r.cidr, ...d }];
    else perm.IpRanges = [{ CidrIp: r.cidr, ...d }];
  } else if (r.sourceGroupId !== undefined) perm.UserIdGroupPairs = [{ GroupId: r.sourceGroupId, ...d }];
  else if (r.prefixListId !== undefined) perm.PrefixListIds = [{ PrefixListId: r.prefixListId, ...d }];
  return perm;
}

export interface RuleChanges {
  /** In desired, not observed: authorise. */
  add: Rule[];
  /** Observed, not desired: revoke. */
  remove: Rule[];
  /** Same rule, another description: update the description (to none, when Git has none). */
  describe: Rule[];
}

/** What turns the observed rule set into the desired one. */
export function diffRules(observed: readonly Rule[], desired: readonly Rule[]): RuleChanges {
  const obs = new Map(observed.map((r) => [ruleKey(r), r]));
  const des = new Map(desired.map((r) => [ruleKey(r), r]));
  const out: RuleChanges = { add: [], remove: [], describe: [] };
  for (const [k, r] of des) {
    const o = obs.get(k);
    if (!o) out.add.push(r);
    else if ((o.description ?? '') !== (r.description ?? '')) out.describe.push(r);
  }
  for (const [k, r] of obs) if (!des.has(k)) out.remove.push(r);
  return out;
}
