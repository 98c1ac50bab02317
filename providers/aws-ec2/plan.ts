/**
 * How to read N selected instances in few calls (pure: unit-tested).
 *
 * Limits that shape it (AWS, documented or enforced):
 * - DescribeInstances returns up to 1000 results a page (`MaxResults`, which
 *   cannot be combined with `InstanceIds`, hence filters);
 * - at most 200 filter values in one call (`FilterLimitExceeded`).
 *
 * Two ways to find the instances, chosen per cycle:
 * - targeted: `instance-id` filters of ≤ 200 ids, and for tag selectors one
 *   `tag:<key>` filter per key of ≤ 200 values (the rest of each selector is
 *   matched here) — ⌈N/200⌉ calls, whatever the size of the account;
 * - scan: every live instance of the region (`instance-state-name` filter,
 *   1000 a page) — ⌈M/1000⌉ calls for M instances in the region, whatever N.
 *
 * One targeted call is always best. Beyond that the scan is used unless the
 * last scan showed a region so large that it costs more pages than the
 * targeted calls would (a small fleet in a big account).
 */
import type { Filter } from '@aws-sdk/client-ec2';
import type { InstanceSelector } from './instance-kind.js';

export const FILTER_VALUES_PER_CALL = 200;
export const PAGE_SIZE = 1000;
/** States in which an instance can be selected; shutting-down and terminated ones are gone. */
const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'] as const;

export interface InstanceQuery {
  filters: Filter[];
  /** Keys of the resources whose selector this query answers. */
  serves: string[];
}

export interface InstancePlan {
  mode: 'targeted' | 'scan';
  queries: InstanceQuery[];
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The tag key a selector is looked up by: `Name` when it has one (usually the most selective), else the first. */
function lookupKey(tags: Readonly<Record<string, string>>): string {
  const keys = Object.keys(tags).sort();
  return keys.includes('Name') ? 'Name' : keys[0]!;
}

/**
 * Plans the DescribeInstances calls for `selectors` (resource key → selector).
 * `lastScanSize`: instances seen by the previous scan, if any (a cost hint only).
 */
export function planInstanceQueries(
  selectors: ReadonlyArray<{ key: string; selector: InstanceSelector }>,
  lastScanSize: number | null,
): InstancePlan {
  if (selectors.length === 0) return { mode: 'targeted', queries: [] };
  const byId = new Map<string, string[]>();
  const byTag = new Map<string, Map<string, string[]>>();
  for (const { key, selector } of selectors) {
    if ('instanceId' in selector) {
      byId.set(selector.instanceId, [...(byId.get(selector.instanceId) ?? []), key]);
    } else {
      const k = lookupKey(selector.tags);
      const values = byTag.get(k) ?? new Map<string, string[]>();
      const v = selector.tags[k]!;
      values.set(v, [...(values.get(v) ?? []), key]);
      byTag.set(k, values);
    }
  }
  const targeted: InstanceQuery[] = [];
  for (const ids of chunk([...byId.keys()].sort(), FILTER_VALUES_PER_CALL))
    targeted.push({
      filters: [{ Name: 'instance-id', Values: ids }],
      serves: ids.flatMap((id) => byId.get(id)!),
    });
  for (const [k, values] of [...byTag].sort(([a], [b]) => (a < b ? -1 : 1)))
    for (const vs of chunk([...values.keys()].sort(), FILTER_VALUES_PER_CALL))
      targeted.push({
        filters: [{ Name: `tag:${k}`, Values: vs }],
        serves: vs.flatMap((v) => values.get(v)!),
      });
  const scanPages = lastScanSize === null ? 1 : Math.max(1, Math.ceil(lastScanSize / PAGE_SIZE));
  if (targeted.length <= 1 || scanPages > targeted.length) return { mode: 'targeted', queries: targeted };
  return {
    mode: 'scan',
    queries: [
      {
        filters: [{ Name: 'instance-state-name', Values: [...LIVE_STATES] }],
        serves: selectors.map((s) => s.key),
      },
    ],
  };
}
