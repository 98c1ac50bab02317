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
