/**
 * The owned-field diff. Desired and observed are projected onto the fields the
 * agent owns — the leaves that Git sets, plus removable leaves it applied
 * before (three-way) — and compared as RFC 6902 JSON Patch. Fields the agent
 * does not own are never looked at, so they can never show up as drift.
 *
 * Set-valued fields are normalised by the kind into keyed maps before this
 * point, so order is never drift.
 */
import jsonpatch, { type Operation } from 'fast-json-patch';
import type { KindDefinition, OwnedDoc } from '../providers/types.js';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const esc = (k: string): string => k.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Copies from `observed` exactly the leaves present in `desired` (nested
 * objects are walked; anything else is a leaf).
 */
function projectOnto(desired: Obj, observed: unknown): Obj {
  const out: Obj = {};
  if (!isObj(observed)) return out;
  for (const k of Object.keys(desired)) {
    if (!Object.hasOwn(observed, k)) continue;
    const d = desired[k];
    const o = observed[k];
    if (isObj(d) && isObj(o)) out[k] = projectOnto(d, o);
    else out[k] = o;
  }
  return out;
}

/**
 * Adds to `out` the observed leaves that were applied before (in `last`), are
 * no longer desired, and that the kind says may be removed — so the diff
 * emits a `remove` for them.
 */
function addRemovals(
  last: Obj,
  desired: Obj | undefined,
  observed: unknown,
  out: Obj,
  pointer: string,
  kind: KindDefinition,
): void {
  if (!isObj(observed)) return;
  for (const k of Object.keys(last)) {
    const p = `${pointer}/${esc(k)}`;
    const l = last[k];
    const d = desired?.[k];
    if (!Object.hasOwn(observed, k)) continue;
    if (isObj(l) && (d === undefined || isObj(d))) {
      const sub = isObj(out[k]) ? (out[k] as Obj) : {};
      addRemovals(l, d as Obj | undefined, observed[k], sub, p, kind);
      if (Object.keys(sub).length > 0 || isObj(out[k])) out[k] = sub;
    } else if (d === undefined && kind.removable(p)) {
      out[k] = observed[k];
    }
  }
}

/** The JSON Patch that turns observed into desired on owned fields; empty when converged. */
export function diffOwned(
  kind: KindDefinition,
  desired: OwnedDoc,
  observed: OwnedDoc,
  lastApplied?: OwnedDoc,
): Operation[] {
  const projected = projectOnto(desired, observed);
  if (lastApplied) addRemovals(lastApplied, desired, observed, projected, '', kind);
  return jsonpatch.compare(projected, desired);
}
