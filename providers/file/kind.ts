/**
 * `kind: File` — a regular file under `providers.file.root`.
 *
 *   spec: { path: etc/motd, content: "hello\n", mode: "0644", ensure: present }
 *
 * `path` is the identity (relative to the root, never leaving it). Owned
 * fields are `ensure` (always), and `content` / `mode` when Git sets them.
 * Observed "missing" reads as `{ensure: absent}`, so creating and deleting are
 * ordinary drift on `/spec/ensure`.
 */
import { posix } from 'node:path';
import { TEMP_PREFIX } from '../../core/atomic-file.js';
import { describeType, isPlainObject, typeOnly } from '../../core/object.js';
import { duplicateIdentities, unknownKeys } from '../spec-check.js';
import type { DesiredResource, KindDefinition, OwnedDoc, SpecProblem } from '../types.js';
import { ROOT_MARKER } from './root-identity.js';

export interface FileSpec {
  path: string;
  content?: string;
  mode?: string;
  ensure: 'present' | 'absent';
}

const FIELDS = ['path', 'content', 'mode', 'ensure'] as const;
const MODE_RE = /^0?[0-7]{3}$/;

/** Why a relative path is unsafe or unclear, or null when it is fine. */
function checkRelativePath(p: string): string | null {
  if (p.length === 0) return 'must not be empty';
  if (p.includes('\0')) return 'must not contain NUL';
  if (p.includes('\\')) return 'must use "/" as separator (backslash found)';
  if (p.startsWith('/')) return 'must be relative to providers.file.root, not absolute';
  const segments = p.split('/');
  if (segments.includes('..')) return 'must not contain ".." (it would leave providers.file.root)';
  if (p.endsWith('/')) return 'must name a file, not a directory';
  // Relative, no "..", no trailing "/": in normal form unless a segment is empty or "." (normalize is the
  // slow part of validating 3,000 paths, so it runs only then, for the message).
  if (segments.some((s) => s === '' || s === '.')) {
    const norm = posix.normalize(p);
    return norm === '.' ? 'must name a file, not a directory' : `is not in normal form; write "${norm}"`;
  }
  if (p === ROOT_MARKER) return `is steward's own marker of the root (${ROOT_MARKER}); it cannot be managed`;
  if (posix.basename(p).startsWith(TEMP_PREFIX))
    return `is reserved for steward's temp files (names starting with ${TEMP_PREFIX})`;
  return null;
}

/** Canonical 4-digit octal mode string. */
function normalizeMode(mode: string): string {
  return mode.padStart(4, '0');
}

function validate(spec: unknown): SpecProblem[] {
  if (!isPlainObject(spec))
    return [{ path: ['spec'], message: `spec must be a mapping, got ${describeType(spec)}` }];
  const problems = unknownKeys(spec, FIELDS, ['spec']);
  const { path, content, mode, ensure } = spec;
  if (path === undefined) problems.push({ path: ['spec'], message: 'spec.path is required' });
  else if (typeof path !== 'string')
    problems.push({
      path: ['spec', 'path'],
      message: `spec.path must be a string, got ${describeType(path)}`,
    });
  else {
    const why = checkRelativePath(path);
    if (why) problems.push({ path: ['spec', 'path'], message: `spec.path "${path}" ${why}` });
  }
  if (content !== undefined && typeof content !== 'string')
    problems.push({
      path: ['spec', 'content'],
      // The value is never echoed: contents may be secrets.
      message: `spec.content must be a string, got ${typeOnly(content)}`,
    });
  if (mode !== undefined) {
    if (typeof mode === 'number')
      problems.push({
        path: ['spec', 'mode'],
        message: `spec.mode must be a quoted octal string such as "0644" (YAML reads an unquoted ${mode} as a decimal number)`,
      });
    else if (typeof mode !== 'string' || !MODE_RE.test(mode))
      problems.push({
        path: ['spec', 'mode'],
        message: `spec.mode must be an octal string such as "0644", got ${describeType(mode)}`,
      });
  }
  if (ensure !== undefined && ensure !== 'present' && ensure !== 'absent')
    problems.push({
      path: ['spec', 'ensure'],
      message: `spec.ensure must be "present" or "absent", got ${describeType(ensure)}`,
    });
  if (ensure === 'absent')
    for (const f of ['content', 'mode'] as const)
      if (spec[f] !== undefined)
        problems.push({ path: ['spec', f], message: `spec.${f} makes no sense with ensure: absent` });
  return problems;
}

/**
 * One literal per shape, not a one-key literal grown key by key: its other keys would go to an out-of-object
 * property array (≈ 40 bytes per File, held while its revision is in force: ≈ 4 MiB at 100k).
 */
function toDesired(spec: Readonly<Record<string, unknown>>): OwnedDoc {
  if (spec['ensure'] === 'absent') return { spec: { ensure: 'absent' } };
  const content = typeof spec['content'] === 'string' ? spec['content'] : undefined;
  const mode = typeof spec['mode'] === 'string' ? normalizeMode(spec['mode']) : undefined;
  if (content === undefined)
    return { spec: mode === undefined ? { ensure: 'present' } : { ensure: 'present', mode } };
  return { spec: mode === undefined ? { ensure: 'present', content } : { ensure: 'present', content, mode } };
}

/** Two Files on one path would fight over it. */
function validateAll(resources: readonly DesiredResource[]) {
  return duplicateIdentities(
    resources,
    'File',
    (r) => r.spec['path'] as string,
    ['spec', 'path'],
    (path, first) => `spec.path "${path}" is already managed by ${first}`,
  );
}

export const fileKind: KindDefinition = {
  kind: 'File',
  provider: 'file',
  validate,
  toDesired,
  removable: () => false,
  disruptive: [],
  contentFields: ['/spec/content'],
  validateAll,
};
