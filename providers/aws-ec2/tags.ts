/**
 * EC2 tags: a map of strings in the manifest and in the owned document.
 * Only the keys Git sets are owned; keys removed from Git that steward applied
 * before are deleted (three-way, via `removable`); tags someone else set are
 * never looked at.
 */
import type { Tag } from '@aws-sdk/client-ec2';
import type { PathSegment } from '../../core/yaml.js';
import { FORBIDDEN_KEYS } from '../../core/yaml.js';
import { describeType, isPlainObject } from '../../core/object.js';
import type { SpecProblem } from '../types.js';

/** AWS's per-resource limit on user tags. */
const MAX_TAGS = 50;

/**
 * Validates a map of tags at `at` (e.g. ['spec','tags'] or ['spec','selector','tags']).
 * `nonEmpty`: a selector needs at least one tag.
 */
export function validateTags(
  v: unknown,
  at: PathSegment[],
  opts: { nonEmpty?: boolean } = {},
): SpecProblem[] {
  const name = at.join('.');
  if (!isPlainObject(v))
    return [
      {
        path: at,
        message: `${name} must be a map of tag names to string values, such as { Env: prod }, got ${describeType(v)}`,
      },
    ];
  const problems: SpecProblem[] = [];
  const entries = Object.entries(v);
  if (opts.nonEmpty && entries.length === 0)
    problems.push({ path: at, message: `${name} must name at least one tag` });
  if (entries.length > MAX_TAGS)
    problems.push({
      path: at,
      message: `${name} has ${entries.length} tags; AWS allows ${MAX_TAGS} per resource`,
    });
  for (const [k, val] of entries) {
    const p = [...at, k];
    if (FORBIDDEN_KEYS.has(k)) {
      problems.push({ path: p, message: `key "${k}" is not allowed`, atKey: true });
      continue;
    }
    if (k.length === 0 || k.length > 128)
      problems.push({
        path: p,
        message: `${name}: a tag name is 1-128 characters, got ${k.length}`,
        atKey: true,
      });
    if (k.toLowerCase().startsWith('aws:'))
      problems.push({
        path: p,
        message: `${name}.${k}: tag names starting with "aws:" are reserved by AWS and cannot be set`,
        atKey: true,
      });
    if (typeof val !== 'string')
      problems.push({
        path: p,
        message: `${name}.${k} must be a string, got ${describeType(val)}${typeof val === 'number' || typeof val === 'boolean' ? ` (quote it: "${String(val)}")` : ''}`,
      });
    else if (val.length > 256)
      problems.push({
        path: p,
        message: `${name}.${k}: a tag value is at most 256 characters, got ${val.length}`,
      });
  }
  return problems;
}

/** A validated tag map as a plain record, keys sorted (a stable document). */
export function tagMap(v: unknown): Record<string, string> {
  if (!isPlainObject(v)) return {};
  const out: Record<string, string> = {};
  for (const k of Object.keys(v).sort()) out[k] = String(v[k]);
  return out;
}

/** AWS's tag list as a record, keys sorted. */
export function tagsFromAws(tags: readonly Tag[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const sorted = [...(tags ?? [])].sort((a, b) => ((a.Key ?? '') < (b.Key ?? '') ? -1 : 1));
  for (const t of sorted) if (t.Key !== undefined && !FORBIDDEN_KEYS.has(t.Key)) out[t.Key] = t.Value ?? '';
  return out;
}

/** Whether `tags` has every pair of `want`. */
export function hasTags(
  tags: Readonly<Record<string, string>>,
  want: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(want).every(([k, v]) => Object.hasOwn(tags, k) && tags[k] === v);
}
