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

/** Observes all resources, grouped by provider, providers in parallel. */
async function observeAll(
  resources: readonly DesiredResource[],
  kinds: ReadonlyMap<string, KindDefinition>,
  providers: ReadonlyMap<string, Provider>,
): Promise<Observed[]> {
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
  const parts = await Promise.all(
    [...groups].map(async ([p, rs]): Promise<Observed[]> => {
      if (typeof p === 'string')
        return rs.map((resource) => ({
          resource,
          result: { status: 'error', id: null, error: p, code: 'PROVIDER_NOT_CONFIGURED' },
        }));
      try {
        const results = await p.observe(rs);
        return rs.map((resource) => ({
          resource,
          result: results.get(resource.key) ?? {
            status: 'error',
            id: null,
            error: 'provider returned no observation',
            code: 'OBSERVE_FAILED',
          },
        }));
      } catch (e) {
        const code = isStewardError(e) ? e.code : 'OBSERVE_FAILED';
        return rs.map((resource) => ({
          resource,
          result: { status: 'error', id: null, error: errorMessage(e), code },
        }));
      }
    }),
  );
  return parts.flat();
}

export async function detect(
  resources: readonly DesiredResource[],
  kinds: ReadonlyMap<string, KindDefinition>,
  providers: ReadonlyMap<string, Provider>,
  lastApplied: (key: string) => OwnedDoc | undefined,
): Promise<Detection> {
  const observed = await observeAll(resources, kinds, providers);
  const out: Detection = { managed: resources.length, drift: [], converged: [], errors: [] };
  for (const { resource, result } of observed) {
    if (result.status === 'error') {
      out.errors.push({ resource, id: result.id, code: result.code, error: result.error });
      continue;
    }
    const patch = diffOwned(
      kinds.get(resource.kind)!,
      resource.desired,
      result.doc,
      lastApplied(resource.key),
    );
    if (patch.length === 0) out.converged.push(resource);
    else out.drift.push({ resource, id: result.id, patch, observed: result.doc });
  }
  return out;
}
