/**
 * Reading instances and security groups FRESH, in as few calls as the API
 * allows (see plan.ts), and turning them into owned documents.
 *
 * Every resource gets exactly one result. A selector that matches no live
 * instance or group, or several, is an error for that resource (steward never
 * creates EC2 resources, and never guesses which of two is meant). A failed
 * call is an error for the resources it would have answered, never "missing".
 */
import type { EC2Client, Filter, Instance, SecurityGroup } from '@aws-sdk/client-ec2';
import { sdk } from './sdk.js';
import { mapLimit } from '../../core/concurrency.js';
import type { DesiredResource, ObserveResult, OwnedDoc } from '../types.js';
import { NOT_FOUND_CODES, awsCode, awsMessage } from './client.js';
import { describeSelector, instanceSelector } from './instance-kind.js';
import { indexGroups, indexInstances, matchGroups, matchInstances } from './match.js';
import { FILTER_VALUES_PER_CALL, PAGE_SIZE, chunk, planInstanceQueries } from './plan.js';
import { rulesFromAws } from './rules.js';
import { groupSelector } from './sg-kind.js';
import { tagsFromAws } from './tags.js';

const { DescribeInstanceAttributeCommand, paginateDescribeInstances, paginateDescribeSecurityGroups } = sdk;

/** Error codes of this provider (besides AWS's own, which are passed through). */
export const EC2_CODES = {
  SELECTOR_NO_MATCH: 'EC2_SELECTOR_NO_MATCH',
  SELECTOR_AMBIGUOUS: 'EC2_SELECTOR_AMBIGUOUS',
  SELECTED_TWICE: 'EC2_SELECTED_TWICE',
} as const;

/** Parallel DescribeInstanceAttribute calls (non-mutating bucket: 100 burst, 20/s). */
const ATTRIBUTE_PARALLEL = 8;

type Results = Map<string, ObserveResult>;

const fail = (id: string | null, code: string, error: string): ObserveResult => ({
  status: 'error',
  id,
  code,
  error,
});

/** `running`/`stopped` as Git writes them: a pending instance is on its way to running, a stopping one to stopped. */
function normaliseState(name: string | undefined): string {
  if (name === 'pending') return 'running';
  if (name === 'stopping') return 'stopped';
  return name ?? 'unknown';
}

const isLive = (i: Instance): boolean => i.State?.Name !== 'terminated' && i.State?.Name !== 'shutting-down';

/** The full owned view of an instance (the diff projects it onto what Git sets). `instanceId` is identity, never owned. */
function instanceDoc(i: Instance, disableApiTermination?: boolean): OwnedDoc {
  const spec: Record<string, unknown> = {
    instanceId: i.InstanceId,
    tags: tagsFromAws(i.Tags),
    state: normaliseState(i.State?.Name),
  };
  if (i.InstanceType !== undefined) spec['instanceType'] = i.InstanceType;
  spec['securityGroupIds'] = [...new Set((i.SecurityGroups ?? []).map((g) => g.GroupId ?? ''))]
    .filter(Boolean)
    .sort();
  if (i.SourceDestCheck !== undefined) spec['sourceDestCheck'] = i.SourceDestCheck;
  if (disableApiTermination !== undefined) spec['disableApiTermination'] = disableApiTermination;
  return { spec };
}

/** The full owned view of a security group. `groupId` is identity, never owned. */
function groupDoc(g: SecurityGroup): OwnedDoc {
  return {
    spec: {
      groupId: g.GroupId,
      tags: tagsFromAws(g.Tags),
      ingress: rulesFromAws(g.IpPermissions),
      egress: rulesFromAws(g.IpPermissionsEgress),
    },
  };
}

/** Collects all pages of DescribeInstances for the filters. */
async function describeInstances(client: EC2Client, filters: Filter[]): Promise<Instance[]> {
  const out: Instance[] = [];
  for await (const page of paginateDescribeInstances(
    { client, pageSize: PAGE_SIZE },
    { Filters: filters, MaxResults: PAGE_SIZE },
  ))
    for (const r of page.Reservations ?? []) out.push(...(r.Instances ?? []));
  return out;
}

async function describeGroups(client: EC2Client, filters: Filter[]): Promise<SecurityGroup[]> {
  const out: SecurityGroup[] = [];
  for await (const page of paginateDescribeSecurityGroups(
    { client, pageSize: PAGE_SIZE },
    { Filters: filters, MaxResults: PAGE_SIZE },
  ))
    out.push(...(page.SecurityGroups ?? []));
  return out;
}

/**
 * Resolves each resource to exactly one match: none or several is an error,
 * and so is one instance claimed by two resources (they would fight).
 */
function resolve<T>(
  resources: readonly DesiredResource[],
  failed: ReadonlyMap<string, ObserveResult>,
  matches: (r: DesiredResource) => T[],
  idOf: (t: T) => string,
  noun: string,
  describe: (r: DesiredResource) => string,
): { out: Results; found: Map<string, T> } {
  const out: Results = new Map();
  const found = new Map<string, T>();
  const claimedBy = new Map<string, string[]>();
  for (const r of resources) {
    const f = failed.get(r.key);
    if (f) {
      out.set(r.key, f);
      continue;
    }
    const m = matches(r);
    if (m.length === 0)
      out.set(
        r.key,
        fail(
          null,
          EC2_CODES.SELECTOR_NO_MATCH,
          `selector ${describe(r)} matches no ${noun}; steward never creates one: fix the selector or create the ${noun}`,
        ),
      );
    else if (m.length > 1)
      out.set(
        r.key,
        fail(
          null,
          EC2_CODES.SELECTOR_AMBIGUOUS,
          `selector ${describe(r)} matches ${m.length} ${noun}s (${m.map(idOf).sort().join(', ')}); it must match exactly one`,
        ),
      );
    else {
      found.set(r.key, m[0]!);
      const id = idOf(m[0]!);
      claimedBy.set(id, [...(claimedBy.get(id) ?? []), r.key]);
    }
  }
  for (const [id, keys] of claimedBy)
    if (keys.length > 1)
      for (const k of keys) {
        found.delete(k);
        out.set(
          k,
          fail(
            id,
            EC2_CODES.SELECTED_TWICE,
            `${id} is selected by ${keys.join(' and ')}; one ${noun}, one manifest`,
          ),
        );
      }
  return { out, found };
}

/** Reads every Ec2Instance; `scan` carries the region size hint between cycles (see plan.ts). */
export async function observeInstances(
  client: EC2Client,
  resources: readonly DesiredResource[],
  scan: { lastSize: number | null },
): Promise<Results> {
  const selectors = resources.map((r) => ({ key: r.key, selector: instanceSelector(r.spec) }));
  const plan = planInstanceQueries(selectors, scan.lastSize);
  const seen = new Map<string, Instance>();
  const failed = new Map<string, ObserveResult>();
  for (const q of plan.queries) {
    try {
      const got = await describeInstances(client, q.filters);
      for (const i of got) if (i.InstanceId) seen.set(i.InstanceId, i);
      if (plan.mode === 'scan') scan.lastSize = got.length;
    } catch (e) {
      for (const k of q.serves)
        failed.set(k, fail(null, awsCode(e), `DescribeInstances failed: ${awsMessage(e)}`));
    }
  }
  const index = indexInstances([...seen.values()].filter(isLive));
  const { out, found } = resolve(
    resources,
    failed,
    (r) => matchInstances(index, instanceSelector(r.spec)),
    (i) => i.InstanceId!,
    'instance',
    (r) => describeSelector(instanceSelector(r.spec)),
  );
  // disableApiTermination is not in DescribeInstances: one DescribeInstanceAttribute per instance
  // whose manifest sets it, and only those.
  const matched = resources.filter((r) => found.has(r.key));
  await mapLimit(matched, ATTRIBUTE_PARALLEL, async (r) => {
    const inst = found.get(r.key)!;
    const id = inst.InstanceId!;
    if (r.desired.spec['disableApiTermination'] === undefined) {
      out.set(r.key, { status: 'present', id, doc: instanceDoc(inst) });
      return;
    }
    try {
      const a = await client.send(
        new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: 'disableApiTermination' }),
      );
      out.set(r.key, {
        status: 'present',
        id,
        doc: instanceDoc(inst, a.DisableApiTermination?.Value ?? false),
      });
    } catch (e) {
      const code = awsCode(e);
      out.set(
        r.key,
        NOT_FOUND_CODES.has(code)
          ? fail(id, EC2_CODES.SELECTOR_NO_MATCH, `${id} no longer exists (${code})`)
          : fail(id, code, `DescribeInstanceAttribute ${id} failed: ${awsMessage(e)}`),
      );
    }
  });
  return out;
}

/** Reads every SecurityGroup: `group-id` filters, and `group-name` + `vpc-id` filters, ≤ 200 values a call. */
export async function observeGroups(
  client: EC2Client,
  resources: readonly DesiredResource[],
): Promise<Results> {
  const sels = resources.map((r) => ({ key: r.key, sel: groupSelector(r.spec) }));
  const byId = sels.filter((s): s is { key: string; sel: { groupId: string } } => 'groupId' in s.sel);
  const byName = sels.filter(
    (s): s is { key: string; sel: { groupName: string; vpcId: string } } => 'groupName' in s.sel,
  );
  const queries: Array<{ filters: Filter[]; serves: string[] }> = [];
  for (const c of chunk(byId, FILTER_VALUES_PER_CALL))
    queries.push({
      filters: [{ Name: 'group-id', Values: [...new Set(c.map((s) => s.sel.groupId))] }],
      serves: c.map((s) => s.key),
    });
  // names and VPCs both count towards the 200 values of one call
  for (const c of chunk(byName, FILTER_VALUES_PER_CALL / 2))
    queries.push({
      filters: [
        { Name: 'group-name', Values: [...new Set(c.map((s) => s.sel.groupName))] },
        { Name: 'vpc-id', Values: [...new Set(c.map((s) => s.sel.vpcId))] },
      ],
      serves: c.map((s) => s.key),
    });
  const seen = new Map<string, SecurityGroup>();
  const failed = new Map<string, ObserveResult>();
  for (const q of queries) {
    try {
      for (const g of await describeGroups(client, q.filters)) if (g.GroupId) seen.set(g.GroupId, g);
    } catch (e) {
      for (const k of q.serves)
        failed.set(k, fail(null, awsCode(e), `DescribeSecurityGroups failed: ${awsMessage(e)}`));
    }
  }
  const index = indexGroups([...seen.values()]);
  const { out, found } = resolve(
    resources,
    failed,
    (r) => matchGroups(index, groupSelector(r.spec)),
    (g) => g.GroupId!,
    'security group',
    (r) => describeSelector(groupSelector(r.spec)),
  );
  for (const [key, g] of found) out.set(key, { status: 'present', id: g.GroupId!, doc: groupDoc(g) });
  return out;
}
