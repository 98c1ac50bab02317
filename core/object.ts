/** Object helpers shared by every layer: plain-object checks and value descriptions that never echo secrets. */

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** The type of a value without the value itself: for fields that may hold secrets (contents). */
export function typeOnly(v: unknown): string {
  return typeof v === 'object' || v === undefined ? describeType(v) : `a ${typeof v}`;
}

export function describeType(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Date) return 'a timestamp';
  return typeof v === 'object' ? 'a mapping' : `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * Deep equality of JSON values: same members (in any order), arrays element by element; false for anything
 * it cannot vouch for (a `toJSON`, a key whose value is `undefined` on one side only).
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bs = b as unknown[];
    if (a.length !== bs.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], bs[i])) return false;
    return true;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  if (typeof ao['toJSON'] === 'function' || typeof bo['toJSON'] === 'function') return false;
  // for…in, not Object.keys: no arrays of keys (it runs per resource per cycle).
  let n = 0;
  for (const k in ao) {
    if (!Object.hasOwn(ao, k)) continue;
    n++;
    if (!Object.hasOwn(bo, k) || !sameJson(ao[k], bo[k])) return false;
  }
  for (const k in bo) if (Object.hasOwn(bo, k)) n--;
  return n === 0;
}
