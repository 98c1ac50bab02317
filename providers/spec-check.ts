/** Small helpers for validating a manifest's `spec` and reporting by path. */
import type { PathSegment } from '../core/yaml.js';
import { FORBIDDEN_KEYS } from '../core/yaml.js';
import type { DesiredResource, SpecProblem } from './types.js';

/** Reports keys that are not in `allowed` (with a hint for near misses). */
export function unknownKeys(
  obj: Record<string, unknown>,
  allowed: readonly string[],
  at: PathSegment[],
): SpecProblem[] {
  const out: SpecProblem[] = [];
  for (const k of Object.keys(obj)) {
    if (FORBIDDEN_KEYS.has(k))
      out.push({ path: [...at, k], message: `key "${k}" is not allowed`, atKey: true });
    else if (!allowed.includes(k)) {
      const hint = allowed.find((a) => a.toLowerCase() === k.toLowerCase());
      out.push({
        path: [...at, k],
        message: `unknown field "${[...at, k].join('.')}"${hint ? ` (did you mean "${hint}"?)` : ''}; allowed: ${allowed.join(', ')}`,
        atKey: true,
      });
    }
  }
  return out;
}

/**
 * Cross-resource check: two manifests of `kind` with the same identity (a
 * file path, an instance selector) would fight over one resource. The second
 * and later ones are reported at `path`.
 */
export function duplicateIdentities(
  resources: readonly DesiredResource[],
  kind: string,
  identity: (r: DesiredResource) => string,
  path: PathSegment[],
  message: (id: string, first: string) => string,
): Array<{ key: string; path: PathSegment[]; message: string }> {
  const seen = new Map<string, string>();
  const out: Array<{ key: string; path: PathSegment[]; message: string }> = [];
  for (const r of resources) {
    if (r.kind !== kind) continue;
    const id = identity(r);
    const first = seen.get(id);
    if (first) out.push({ key: r.key, path, message: message(id, first) });
    else seen.set(id, `${r.key} (${r.origin})`);
  }
  return out;
}
