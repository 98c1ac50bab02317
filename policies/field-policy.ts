/**
 * Field policy (SPEC §2.5): which drifted fields are reverted and which are
 * only reported.
 *
 * Protects against an automatic revert that hurts more than the drift it
 * fixes: a disruptive field (an EC2 instance type needs a stop) or a field an
 * operator chose to watch only is reported, never applied — even when Git asks
 * for it, because a wrong desired state in Git is exactly what guardrails are
 * for.
 *
 * Decision for one operation, by its path (first rule that applies):
 *
 *  1. Manifest `policy.onDrift: report` → `report` (a manifest may tighten).
 *  2. Config `fieldPolicy[kind]`, longest pointer equal to the path or a
 *     parent of it on `/` boundaries → that value. This is the only way to
 *     make a disruptive field `revert`.
 *  3. Path at or under one of the kind's disruptive pointers → `report`.
 *  4. Otherwise → `revert` (manifest `onDrift: revert` is the default).
 *
 * So a manifest can never loosen a guardrail the operator configured: neither
 * `onDrift: revert` over a disruptive field nor over a config `report` entry.
 * Git is the untrusted input here; only the agent's own config can opt a
 * disruptive field into `revert`.
 *
 * An operation whose path is a parent of a field that resolves to `report`
 * (e.g. a `replace /spec/tags` while `/spec/tags/Owner` is `report`) would
 * change that field too, so it is reported as well. A `move` is judged by both
 * its `from` and its `path`. Pointers are compared in their escaped RFC 6901
 * form (`~1` for `/` inside a key), so config pointers must be written escaped.
 */
import type { Operation } from 'fast-json-patch';
import type { FieldPolicy, GuardrailConfig } from './types.js';

export interface ClassifyInput {
  kind: string;
  patch: readonly Operation[];
  /** Manifest-level `policy.onDrift`. */
  resourcePolicy?: FieldPolicy | undefined;
  /** The kind's disruptive pointers (from its provider). */
  kindDisruptive: readonly string[];
  config: GuardrailConfig['fieldPolicy'];
}

export interface ClassifiedPatch {
  /** Operations the agent may apply (input order kept). */
  revert: Operation[];
  /** Operations only reported (input order kept). */
  report: Operation[];
}

/** Splits a patch into the operations to revert and those only to report. */
export function classifyPatch(input: ClassifyInput): ClassifiedPatch {
  const rules = input.config[input.kind] ?? {};
  const revert: Operation[] = [];
  const report: Operation[] = [];
  for (const op of input.patch) {
    const touched = op.op === 'move' ? [op.from, op.path] : [op.path];
    const isReport =
      input.resourcePolicy === 'report' ||
      touched.some(
        (path) =>
          policyForPath(path, rules, input.kindDisruptive) === 'report' ||
          coversReport(path, rules, input.kindDisruptive),
      );
    (isReport ? report : revert).push(op);
  }
  return { revert, report };
}

/** The policy of one path from config rules and disruptive pointers (rules 2–4 above). */
export function policyForPath(
  path: string,
  rules: Readonly<Record<string, FieldPolicy>>,
  disruptive: readonly string[],
): FieldPolicy {
  const configured = longestMatch(path, Object.keys(rules));
  if (configured !== undefined) return rules[configured] ?? 'revert';
  if (disruptive.some((pointer) => isAtOrUnder(path, pointer))) return 'report';
  return 'revert';
}

/** True when `path` is `pointer` or lies under it on a `/` boundary. */
export function isAtOrUnder(path: string, pointer: string): boolean {
  return path === pointer || path.startsWith(`${pointer}/`);
}

/** The longest pointer that `path` is at or under, if any. */
function longestMatch(path: string, pointers: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const pointer of pointers) {
    if (isAtOrUnder(path, pointer) && (best === undefined || pointer.length > best.length)) best = pointer;
  }
  return best;
}

/** True when some field strictly below `path` resolves to `report`: changing `path` would change it. */
function coversReport(
  path: string,
  rules: Readonly<Record<string, FieldPolicy>>,
  disruptive: readonly string[],
): boolean {
  const below = [...Object.keys(rules), ...disruptive].filter((p) => p !== path && isAtOrUnder(p, path));
  return below.some((pointer) => policyForPath(pointer, rules, disruptive) === 'report');
}
