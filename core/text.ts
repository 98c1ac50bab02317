/** Text from data (a resource name, an error message, a reason, an API answer) made safe to print. */

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;
const SHORT: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * `s` with every control character (C0 except those in `keep`, DEL, C1) written out as `\n`, `\r`, `\t` or
 * `\u001b`: it never moves a terminal's cursor, retitles it, clears it or overwrites a line.
 */
export function escapeControls(s: string, keep = ''): string {
  return s.replace(CONTROL, (c) =>
    keep.includes(c) ? c : (SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
  );
}

/** A parsed JSON value with escapeControls applied to every string in it, keys included. */
export function escapeControlsDeep(v: unknown): unknown {
  if (typeof v === 'string') return escapeControls(v);
  if (Array.isArray(v)) return v.map(escapeControlsDeep);
  if (typeof v === 'object' && v !== null)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [escapeControls(k), escapeControlsDeep(x)]));
  return v;
}
