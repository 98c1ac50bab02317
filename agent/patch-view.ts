/**
 * The DISPLAY form of a drift's JSON Patch: what leaves the process (audit
 * log, `/v1/drift`, `steward plan`, log lines). The real patch is only ever
 * handed to the provider.
 *
 * File contents (a kind's `contentFields`) are never shown whole: an op on a
 * content field carries the sha256 and byte size of the value before and
 * after, and — unless the resource is `sensitive: true` — a unified line diff
 * (observed → desired) with `DIFF_CONTEXT` lines of context and no headers.
 * The changed lines themselves are in that diff: that is the trade-off a
 * non-sensitive resource makes. A sensitive resource shows no value of any
 * field: every op with a value carries only digests.
 *
 *   { op: 'replace', path: '/spec/content', diff: '@@ -3,5 +3,5 @@\n …',
 *     before: { sha256, bytes }, after: { sha256, bytes } }
 *
 * `before` / `after` (not RFC 6902's `from`, which names a pointer) are null
 * when there is no value on that side (an `add`, a `remove`). A string's
 * digest is the sha256 of its UTF-8 bytes — what `sha256sum` prints for the
 * file; any other value is digested as its JSON text. Non-content fields of a
 * non-sensitive resource keep their op unchanged, `value` included.
 */
import { formatPatch, OMIT_HEADERS, structuredPatch } from 'diff';
import type { Operation } from 'fast-json-patch';
import type { DesiredResource, KindDefinition, OwnedDoc } from '../providers/types.js';
import { sha256Hex } from '../core/sha256.js';

export interface Digest {
  sha256: string;
  bytes: number;
}

/** An op whose value is not shown: digests, and a line diff for non-sensitive content. */
export interface DigestOp {
  op: 'add' | 'replace' | 'remove' | 'test';
  path: string;
  /** Unified line diff observed → desired, hunks only; absent for sensitive resources or when too large. */
  diff?: string;
  before: Digest | null;
  after: Digest | null;
}

export type DisplayOp = Operation | DigestOp;

export interface PatchViewOptions {
  /** Pointers (`/spec/content`) whose string values are file contents. */
  contentFields: readonly string[];
  /** `sensitive: true` in the manifest: digests only, for every value. */
  sensitive: boolean;
  /** The observed owned document the patch was computed against (for the "before" side). */
  observed: OwnedDoc;
}

/** Lines of unchanged context around each change in a diff. */
export const DIFF_CONTEXT = 2;
/** Contents larger than this (either side) get digests only: diffing them would cost too much. */
const MAX_DIFF_INPUT_BYTES = 256 * 1024;
/**
 * Diffs needing more edits (lines added + removed) than this, or longer than
 * MAX_DIFF_CHARS, are left out: bounds the work to ~10 ms for a 20,000-line file.
 */
const MAX_EDIT_LENGTH = 200;
const MAX_DIFF_CHARS = 16 * 1024;
/**
 * A drifted resource is reported every cycle until it converges (a frozen
 * fleet: thousands, for hours), so diffs are remembered by the digests of
 * both sides, least recently used out first, bounded in characters held.
 */
export const DIFF_CACHE_CHARS = 8 * 1024 * 1024;
const diffCache = new Map<string, string | null>();
let diffCacheChars = 0;
const entryChars = (key: string, diff: string | null): number => key.length + (diff?.length ?? 0);

/**
 * What the diff cache holds (entries, and characters counted against {@link DIFF_CACHE_CHARS}), and a way to
 * empty it: for tests and the leak benchmark, which measures the heap without a cache that is bounded by
 * construction (a fleet edited with new content every cycle fills it to its bound, which is no leak).
 */
export const diffCacheStats = (): { entries: number; chars: number } => ({
  entries: diffCache.size,
  chars: diffCacheChars,
});
export function clearDiffCache(): void {
  diffCache.clear();
  diffCacheChars = 0;
}

/** A value's digest: of a string its UTF-8 bytes, of anything else its JSON text (core/sha256.ts hashes it). */
function digestOf(value: unknown): Digest {
  const buf = Buffer.from(typeof value === 'string' ? value : (JSON.stringify(value) ?? 'null'), 'utf8');
  return { sha256: sha256Hex(buf), bytes: buf.length };
}

const pointerSegment = (seg: string): string => seg.replace(/~1/g, '/').replace(/~0/g, '~');

/** The value at a JSON pointer, or undefined. */
function valueAt(doc: unknown, pointer: string): unknown {
  if (pointer === '') return doc;
  let cur: unknown = doc;
  for (const seg of pointer.split('/').slice(1).map(pointerSegment)) {
    if (typeof cur !== 'object' || cur === null || !Object.hasOwn(cur, seg)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/** A line diff old → new, hunks only; undefined when too large to compute or show. */
export function lineDiff(before: string, after: string): string | undefined {
  if (Buffer.byteLength(before) > MAX_DIFF_INPUT_BYTES || Buffer.byteLength(after) > MAX_DIFF_INPUT_BYTES)
    return undefined;
  const p = structuredPatch('', '', before, after, undefined, undefined, {
    context: DIFF_CONTEXT,
    maxEditLength: MAX_EDIT_LENGTH,
  });
  if (!p) return undefined;
  if (p.hunks.length === 0) return '';
  const text = formatPatch(p, OMIT_HEADERS);
  return text.length > MAX_DIFF_CHARS ? undefined : text;
}

/**
 * Replaces, inside an op's object value, every content field below `path`
 * by its digest (an `add` of a whole `/spec`, say).
 */
function maskNested(value: unknown, path: string, contentFields: readonly string[]): unknown {
  const below = contentFields.filter((f) => f.startsWith(`${path}/`));
  if (below.length === 0 || typeof value !== 'object' || value === null) return value;
  const copy = structuredClone(value) as Record<string, unknown>;
  for (const f of below) {
    const segs = f.slice(path.length).split('/').slice(1).map(pointerSegment);
    let cur: unknown = copy;
    for (const seg of segs.slice(0, -1))
      cur = typeof cur === 'object' && cur !== null ? (cur as Record<string, unknown>)[seg] : undefined;
    const last = segs[segs.length - 1]!;
    if (typeof cur === 'object' && cur !== null && Object.hasOwn(cur, last)) {
      const c = cur as Record<string, unknown>;
      c[last] = digestOf(c[last]);
    }
  }
  return copy;
}

function viewOp(op: Operation, o: PatchViewOptions): DisplayOp {
  if (op.op !== 'add' && op.op !== 'replace' && op.op !== 'remove' && op.op !== 'test') return op;
  const isContent = o.contentFields.includes(op.path);
  if (!o.sensitive && !isContent) {
    if (op.op === 'remove') return op;
    const masked = maskNested(op.value, op.path, o.contentFields);
    return masked === op.value ? op : { ...op, value: masked };
  }
  const old = op.op === 'add' ? undefined : valueAt(o.observed, op.path);
  const out: DigestOp = {
    op: op.op,
    path: op.path,
    before: old === undefined ? null : digestOf(old),
    after: op.op === 'remove' ? null : digestOf(op.value),
  };
  if (!o.sensitive && op.op !== 'remove' && typeof op.value === 'string') {
    const diff = cachedDiff(typeof old === 'string' ? old : '', op.value, out.before, out.after!);
    if (diff !== undefined) return { op: out.op, path: out.path, diff, before: out.before, after: out.after };
  }
  return out;
}

function cachedDiff(before: string, after: string, b: Digest | null, a: Digest): string | undefined {
  const key = `${b?.sha256 ?? ''}:${a.sha256}`;
  let hit = diffCache.get(key);
  if (hit === undefined) {
    hit = lineDiff(before, after) ?? null;
    diffCacheChars += entryChars(key, hit);
    for (const [k, v] of diffCache) {
      if (diffCacheChars <= DIFF_CACHE_CHARS) break;
      diffCache.delete(k);
      diffCacheChars -= entryChars(k, v);
    }
  } else diffCache.delete(key); // re-inserted below: most recently used last
  diffCache.set(key, hit);
  return hit ?? undefined;
}

/** The display form of `ops`; the input is not modified. */
export function displayPatch(ops: readonly Operation[], o: PatchViewOptions): DisplayOp[] {
  return ops.map((op) => viewOp(op, o));
}

/** `displayPatch` for a resource of a known kind: what every caller outside the provider uses. */
export function displayPatchOf(
  kinds: ReadonlyMap<string, KindDefinition>,
  resource: DesiredResource,
  ops: readonly Operation[],
  observed: OwnedDoc,
): DisplayOp[] {
  return displayPatch(ops, {
    contentFields: kinds.get(resource.kind)?.contentFields ?? [],
    sensitive: resource.sensitive === true,
    observed,
  });
}

/** The changed pointers of a patch (`replace /spec/content`): all a log line needs. */
export const opPaths = (ops: readonly Operation[]): string[] => ops.map((op) => `${op.op} ${op.path}`);

const short = (d: Digest | null): string =>
  d ? `sha256:${d.sha256.slice(0, 12)} (${d.bytes} bytes)` : 'none';

/** Human lines for one display op (`steward plan`): op, path, value or digests, then the diff indented. */
export function formatDisplayOp(op: DisplayOp, indent = '    '): string[] {
  const head = `${indent}${op.op.padEnd(7)} ${op.path}`;
  if ('before' in op) {
    const d: DigestOp = op;
    const out = [
      `${head}  ${short(d.before)} -> ${short(d.after)}${d.diff === undefined ? ' (diff not shown)' : ''}`,
    ];
    if (d.diff) for (const l of d.diff.replace(/\n$/, '').split('\n')) out.push(`${indent}    ${l}`);
    return out;
  }
  return [`${head}${'value' in op ? ` = ${JSON.stringify(op.value)}` : ''}`];
}
