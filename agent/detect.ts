/**
 * Detection: observe every managed resource FRESH and diff it on owned fields.
 * Shared by the loop and `steward plan`. No decisions, no writes.
 */
import type { Operation } from 'fast-json-patch';
import { providerFor } from '../providers/registry.js';
import type {
  DesiredResource,
  KindDefinition,
  ObserveResult,
  OwnedDoc,
  Provider,
} from '../providers/types.js';
import { diffOwned } from './diff.js';
import { errorMessage, isStewardError } from '../core/errors.js';
import { sameJson } from '../core/object.js';

export interface Observed {
  resource: DesiredResource;
  result: ObserveResult;
}

export interface DetectedDrift {
  resource: DesiredResource;
  id: string | null;
  patch: Operation[];
  observed: OwnedDoc;
}

export interface Detection {
  managed: number;
  drift: DetectedDrift[];
  /** Resources whose owned fields match Git. */
  converged: DesiredResource[];
  /** Resources that could not be observed: never treated as missing, never acted on. */
  errors: Array<{ resource: DesiredResource; id: string | null; code: string; error: string }>;
}

/** The desired resources of each provider (or of a "no provider" error message), in revision order. */
function groupByProvider(
  resources: readonly DesiredResource[],
  kinds: ReadonlyMap<string, KindDefinition>,
  providers: ReadonlyMap<string, Provider>,
): Map<Provider | string, DesiredResource[]> {
  const groups = new Map<Provider | string, DesiredResource[]>();
  for (const r of resources) {
    let p: Provider | string;
    try {
      p = providerFor(kinds.get(r.kind)!, providers);
    } catch (e) {
      p = errorMessage(e); // no provider configured: an error for these resources
    }
    const g = groups.get(p) ?? [];
    g.push(r);
    groups.set(p, g);
  }
  return groups;
}

/**
 * Observes one provider's resources; `each` is called per resource, in order, with its result. A provider
 * that sets `observeBatch` is asked for that many at a time, each batch handed to `each` before the next is
 * read: only one batch of observed documents is alive at once (what `each` keeps aside, the drift, stays).
 */
async function observeGroup(
  p: Provider | string,
  rs: readonly DesiredResource[],
  each: (resource: DesiredResource, result: ObserveResult) => void,
): Promise<void> {
  if (typeof p === 'string') {
    for (const r of rs) each(r, { status: 'error', id: null, error: p, code: 'PROVIDER_NOT_CONFIGURED' });
    return;
  }
  const size = p.observeBatch !== undefined && p.observeBatch >= 1 ? Math.floor(p.observeBatch) : rs.length;
  if (size >= rs.length) return observeBatch(p, rs, each);
  for (let start = 0; start < rs.length; start += size)
    await observeBatch(p, rs.slice(start, start + size), each);
}

/** One `observe` call: a throw is an observe error for each of its resources, never "missing". */
async function observeBatch(
  p: Provider,
  rs: readonly DesiredResource[],
  each: (resource: DesiredResource, result: ObserveResult) => void,
): Promise<void> {
  let results: ReadonlyMap<string, ObserveResult>;
  try {
    results = await p.observe(rs);
  } catch (e) {
    const code = isStewardError(e) ? e.code : 'OBSERVE_FAILED';
    const error = errorMessage(e);
    for (const r of rs) each(r, { status: 'error', id: null, error, code });
    return;
  }
  for (const r of rs)
    each(
      r,
      results.get(r.key) ?? {
        status: 'error',
        id: null,
        error: 'provider returned no observation',
        code: 'OBSERVE_FAILED',
      },
    );
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Whether `observed` matches `desired` on every leaf Git sets: the common case, answered without
 * building the projection and the patch (100k of each per cycle at scale). Only ever answers true when
 * the owned-field diff would be empty; anything it is unsure of is false, and the full diff decides.
 */
export function ownedFieldsMatch(desired: Obj, observed: unknown): boolean {
  if (!isObj(observed)) return false;
  // for…in, not Object.keys: no array of keys per document per cycle.
  for (const k in desired) {
    if (!Object.hasOwn(desired, k)) continue;
    if (!Object.hasOwn(observed, k)) return false;
    const d = desired[k];
    const o = observed[k];
    if (isObj(d) && isObj(o)) {
      if (!ownedFieldsMatch(d, o)) return false;
    } else if (!sameJson(o, d)) return false;
  }
  return true;
}

const NO_PATCH: Operation[] = [];

/**
 * Observes all resources, grouped by provider, providers in parallel, and diffs each result as it comes
 * (no list of all observations is built). Results are reported in revision order within a provider.
 */
export async function detect(
  resources: readonly DesiredResource[],
  kinds: ReadonlyMap<string, KindDefinition>,
  providers: ReadonlyMap<string, Provider>,
  lastApplied: (key: string) => OwnedDoc | undefined,
): Promise<Detection> {
  const out: Detection = { managed: resources.length, drift: [], converged: [], errors: [] };
  const groups = [...groupByProvider(resources, kinds, providers)];
  const parts = groups.map((): Detection => ({ managed: 0, drift: [], converged: [], errors: [] }));
  await Promise.all(
    groups.map(([p, rs], i) =>
      observeGroup(p, rs, (resource, result) => {
        const part = parts[i]!;
        if (result.status === 'error') {
          part.errors.push({ resource, id: result.id, code: result.code, error: result.error });
          return;
        }
        const last = lastApplied(resource.key);
        // Three-way removals need a base that differs from the desired document; without one, a match
        // on Git's leaves is convergence. A base equal to it but not shared (as loaded from disk after a
        // restart) is no different: compared, not diffed (no projection and patch per resource).
        const patch =
          (last === undefined || last === resource.desired || sameJson(last, resource.desired)) &&
          ownedFieldsMatch(resource.desired, result.doc)
            ? NO_PATCH
            : diffOwned(kinds.get(resource.kind)!, resource.desired, result.doc, last);
        if (patch.length === 0) part.converged.push(resource);
        else part.drift.push({ resource, id: result.id, patch, observed: result.doc });
      }),
    ),
  );
  if (parts.length === 1) return { ...parts[0]!, managed: resources.length }; // one provider: no copies
  for (const part of parts) {
    for (const x of part.drift) out.drift.push(x);
    for (const x of part.converged) out.converged.push(x);
    for (const x of part.errors) out.errors.push(x);
  }
  return out;
}
