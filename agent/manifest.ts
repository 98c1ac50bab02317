/**
 * Manifests: parsing and validating a whole revision of desired state.
 * A revision is valid only as a whole; every problem is reported as
 * `file:line:col: message`.
 */
import type { SourceProblem } from '../core/errors.js';
import { describeType, isPlainObject } from '../core/object.js';
import { unknownKeys } from '../providers/spec-check.js';
import type { DesiredResource, KindDefinition } from '../providers/types.js';
import { type PathSegment, type Position, parseYaml, type YamlDocument } from '../core/yaml.js';
import { nodeZlib } from '../core/builtins.js';

const API_VERSION = 'steward/v1';
const TOP_KEYS = ['apiVersion', 'kind', 'metadata', 'spec', 'policy', 'sensitive'] as const;
const NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$/;

export interface ManifestFile {
  /** Path relative to the repository root (or the validated directory). */
  file: string;
  text: string;
  /** The Git blob id of `text`, when read from Git: with the path, the key of the {@link ManifestCache}. */
  oid?: string;
}

/** What one file parses into: its own problems and resources (cross-file checks run on the whole revision). */
interface FileParse {
  problems: SourceProblem[];
  /** Each resource with its document, while the file is being parsed (the documents hold the parser's events). */
  located: Array<{ resource: DesiredResource; doc: YamlDocument }>;
}

/**
 * One file as the cache holds it: its problems, its resources, and what finds their documents again should a
 * later revision report a cross-file problem (a duplicate) there — the text, compressed, and per resource its
 * document's index and start, in one typed array. No object per resource beyond the resource itself: the
 * parsed documents (and their parser events) are not kept, nor a document stand-in per resource (≈ 300 bytes
 * each, ≈ 30 MiB of heap at 100k).
 */
interface CachedFile {
  problems: SourceProblem[];
  resources: DesiredResource[];
  /** Per resource, three numbers: its document's index within the file, then the line and column it starts at. */
  starts: Int32Array;
  /** The file's text: deflated when the cache keeps it, as it is for one parseRevision call only. */
  packed: Buffer | string;
}

const cacheKey = (file: string, oid: string): string => `${oid}\u0000${file}`;

/**
 * A manifest's text as the cache keeps it: compressed (YAML text shrinks several times; ≈ 48 MB of text at
 * 100k Files), read back only to place a cross-file problem in an unchanged file.
 */
const pack = (text: string): Buffer => {
  const out = nodeZlib().deflateRawSync(Buffer.from(text, 'utf8'), { level: 1 });
  // zlib's output is a view of its output chunk (16 KiB on Node 20, 64 KiB on 24): copied into a buffer of
  // its own, the cache holds the bytes, not the chunk. Not from Buffer's shared pool either (copyBytesFrom
  // and Buffer.from use it for small sizes on Node 24): one small copy would keep a whole pool slab alive.
  if (out.length === out.buffer.byteLength) return out;
  const own = Buffer.allocUnsafeSlow(out.length);
  out.copy(own);
  return own;
};
const unpack = (packed: Buffer): string => nodeZlib().inflateRawSync(packed).toString('utf8');

/**
 * Parsed manifests of the last revision, by path and blob id: a revision that changes one file parses that file
 * only (the source does not even read the others: GitEngine.readManifests' `known`). It holds what the revision
 * in force holds anyway (its resources), and per file the text (compressed) to find positions in should a later revision
 * report a cross-file problem (a duplicate) there. Entries of files that the last revision no longer has are
 * dropped with it.
 */
export class ManifestCache {
  private entries = new Map<string, CachedFile>();
  /** Files parsed so far (cache misses): a counter for tests and benchmarks. */
  parsed = 0;
  /** Of those, files kept for a later revision, their text compressed: a counter for tests. */
  packed = 0;
  /**
   * One revision only (`steward plan`): nothing is kept for a later one — no entry, no compressed text — so
   * the parsed documents go as soon as the revision is built, as without a cache; and the resources' strings
   * are left as the parser made them (slices of the text), not copied to strings of their own.
   */
  readonly oneShot: boolean;

  constructor(opts: { oneShot?: boolean } = {}) {
    this.oneShot = opts.oneShot === true;
  }

  /** Whether the manifest at `file` with blob id `oid` is held parsed (GitEngine.readManifests' `known`). */
  readonly has = (file: string, oid: string): boolean => this.entries.has(cacheKey(file, oid));

  get size(): number {
    return this.entries.size;
  }

  /** @internal parseRevision's: the entry, or undefined. */
  get(file: string, oid: string): CachedFile | undefined {
    return this.entries.get(cacheKey(file, oid));
  }

  /** @internal parseRevision's: the entries of the revision just parsed replace the previous ones. */
  replace(next: Map<string, CachedFile>): void {
    this.entries = next;
  }
}

export type RevisionParse =
  | { ok: true; resources: DesiredResource[] }
  | { ok: false; problems: SourceProblem[]; resources: DesiredResource[] };

/**
 * A resource of the revision being parsed: the `i`-th of its file's entry (`held`: from the cache, or made
 * from the file just parsed, so that no file's parser events outlive its parse), whose text is parsed again
 * only if a problem is placed there after the file's own parse.
 */
interface Located {
  resource: DesiredResource;
  file: string;
  held: CachedFile;
  i: number;
}

/** A file's text parsed again, once per parseRevision call (its documents are not kept past it). */
type Reparsed = Map<CachedFile, YamlDocument[] | null>;

function locate(l: Located, path: PathSegment[], value: boolean, reparsed: Reparsed): Position {
  const { held } = l;
  let docs = reparsed.get(held);
  if (docs === undefined) {
    const text = typeof held.packed === 'string' ? held.packed : unpack(held.packed);
    const again = parseYaml(text, l.file);
    docs = again.ok ? again.docs : null;
    reparsed.set(held, docs);
  }
  const doc = docs?.[held.starts[3 * l.i]!];
  return doc
    ? doc.locate(path, { value })
    : { line: held.starts[3 * l.i + 1]!, col: held.starts[3 * l.i + 2]! };
}

function at(
  l: Located,
  path: PathSegment[],
  message: string,
  reparsed: Reparsed,
  atKey = false,
): SourceProblem {
  const { line, col } = locate(l, path, !atKey, reparsed);
  return { file: l.file, line, col, message };
}

/** What the cache keeps of a file just parsed (its text deflated when `keep`, else as it is). */
function toCached(parse: FileParse, text: string, keep: boolean): CachedFile {
  const starts = new Int32Array(3 * parse.located.length);
  parse.located.forEach((l, i) => {
    starts[3 * i] = l.doc.index;
    starts[3 * i + 1] = l.doc.start.line;
    starts[3 * i + 2] = l.doc.start.col;
  });
  return {
    problems: parse.problems,
    resources: parse.located.map((l) => l.resource),
    starts,
    packed: keep ? pack(text) : text,
  };
}

function checkEnvelope(
  value: Record<string, unknown>,
  kinds: ReadonlyMap<string, KindDefinition>,
): Array<{ path: PathSegment[]; message: string; atKey?: boolean }> {
  const problems = unknownKeys(value, TOP_KEYS, []);
  const { apiVersion, kind, metadata, policy } = value;
  if (apiVersion !== API_VERSION)
    problems.push({
      path: apiVersion === undefined ? [] : ['apiVersion'],
      message: `apiVersion must be "${API_VERSION}", got ${describeType(apiVersion)}`,
    });
  if (typeof kind !== 'string')
    problems.push({
      path: kind === undefined ? [] : ['kind'],
      message: `kind is required and must be a string, got ${describeType(kind)}`,
    });
  else if (!kinds.has(kind))
    problems.push({
      path: ['kind'],
      message: `unknown kind "${kind}"; known kinds: ${[...kinds.keys()].join(', ')}`,
    });
  if (!isPlainObject(metadata))
    problems.push({ path: metadata === undefined ? [] : ['metadata'], message: 'metadata.name is required' });
  else {
    problems.push(...unknownKeys(metadata, ['name', 'labels', 'annotations'], ['metadata']));
    const name = metadata['name'];
    if (name === undefined) problems.push({ path: ['metadata'], message: 'metadata.name is required' });
    else if (typeof name !== 'string' || !NAME_RE.test(name))
      problems.push({
        path: ['metadata', 'name'],
        message: `metadata.name must be 1-253 letters, digits, ".", "_" or "-", starting and ending with a letter or digit; got ${describeType(name)}`,
      });
  }
  if (value['spec'] === undefined) problems.push({ path: [], message: 'spec is required' });
  if (value['sensitive'] !== undefined && typeof value['sensitive'] !== 'boolean')
    problems.push({
      path: ['sensitive'],
      message: `sensitive must be true or false, got ${describeType(value['sensitive'])}`,
    });
  if (policy !== undefined) {
    if (!isPlainObject(policy))
      problems.push({ path: ['policy'], message: 'policy must be a mapping such as { onDrift: report }' });
    else {
      problems.push(...unknownKeys(policy, ['onDrift'], ['policy']));
      if (policy['onDrift'] !== undefined && policy['onDrift'] !== 'revert' && policy['onDrift'] !== 'report')
        problems.push({
          path: ['policy', 'onDrift'],
          message: `policy.onDrift must be "revert" or "report", got ${describeType(policy['onDrift'])}`,
        });
    }
  }
  return problems;
}

/**
 * A string of its own, not a slice of the file's text nor a rope of its lines (the parser's strings are;
 * shorter than 13 characters V8 copies anyway). Round-tripped through JSON, which keeps every code unit.
 */
const own = (s: string): string => (s.length < 13 ? s : (JSON.parse(JSON.stringify(s)) as string));

/**
 * Gives every string in a parsed value (in place: the parser's fresh objects and arrays) a string of its own,
 * so a resource held while its revision is in force does not keep its manifest's whole text and the parser's
 * pieces alive: ≈ 2.6 KB per File resource at 100k instead of ≈ 0.7 KB.
 */
function ownStrings(v: unknown): void {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x === 'string') v[i] = own(x);
      else ownStrings(x);
    }
  } else if (isPlainObject(v))
    for (const k of Object.keys(v)) {
      const x = v[k];
      if (typeof x === 'string') v[k] = own(x);
      else ownStrings(x);
    }
}

/** Parses one file into validated resources and problems. */
function parseFile(
  f: ManifestFile,
  kinds: ReadonlyMap<string, KindDefinition>,
  problems: SourceProblem[],
  out: FileParse['located'],
  /**
   * The resources may be held while a revision is in force: their strings are made their own. False only for a
   * one-shot cache (`steward plan`), whose resources go with the process.
   */
  held: boolean,
): void {
  const mine = held ? own : (s: string) => s;
  const parsed = parseYaml(f.text, f.file);
  if (!parsed.ok) {
    problems.push(parsed.problem);
    return;
  }
  for (const doc of parsed.docs) {
    if (doc.value === null || doc.value === undefined) continue; // empty document, e.g. a trailing `---`
    if (!isPlainObject(doc.value)) {
      problems.push({
        file: f.file,
        ...doc.start,
        message: `a manifest must be a mapping, got ${describeType(doc.value)}`,
      });
      continue;
    }
    const value = doc.value;
    const envelope = checkEnvelope(value, kinds);
    const kind = typeof value['kind'] === 'string' ? kinds.get(value['kind']) : undefined;
    const specProblems = kind ? kind.validate(value['spec']) : [];
    for (const p of [...envelope, ...specProblems]) {
      const { line, col } = doc.locate(p.path, { value: !p.atKey });
      problems.push({ file: f.file, line, col, message: p.message });
    }
    if (envelope.length > 0 || specProblems.length > 0 || !kind) continue;
    const name = mine((value['metadata'] as Record<string, unknown>)['name'] as string);
    const spec = value['spec'] as Record<string, unknown>;
    if (held) ownStrings(spec);
    const onDrift = (value['policy'] as Record<string, unknown> | undefined)?.['onDrift'] as
      | 'revert'
      | 'report'
      | undefined;
    const origin = mine(`${f.file}:${doc.start.line}:${doc.start.col}`);
    const resource: DesiredResource = {
      key: mine(`${kind.kind}/${name}`),
      kind: kind.kind,
      name,
      spec,
      desired: kind.toDesired(spec),
      origin,
    };
    if (onDrift) resource.onDrift = onDrift;
    if (value['sensitive'] === true) resource.sensitive = true;
    out.push({ resource, doc });
  }
}

/**
 * Parses and validates a whole revision. Files are processed in path order so errors are stable. With a
 * `cache`, a file with a blob id is parsed only when the cache does not hold it, and `unchanged` (files the
 * source did not read because the cache holds them) are taken from it.
 */
export function parseRevision(
  files: readonly ManifestFile[],
  kinds: ReadonlyMap<string, KindDefinition>,
  cache?: ManifestCache,
  unchanged: ReadonlyArray<{ file: string; oid: string }> = [],
): RevisionParse {
  const problems: SourceProblem[] = [];
  const located: Located[] = [];
  const next = new Map<string, CachedFile>();
  // A one-shot cache (steward plan) keeps nothing for a later revision.
  const keep = cache !== undefined && !cache.oneShot;
  const all: Array<{ file: string; oid?: string; text?: string }> = [...files, ...unchanged];
  for (const f of all.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))) {
    const key = keep && f.oid !== undefined ? cacheKey(f.file, f.oid) : undefined;
    const held = key !== undefined ? cache!.get(f.file, f.oid!) : undefined;
    if (held) {
      if (key !== undefined) next.set(key, held);
      problems.push(...held.problems);
      for (let i = 0; i < held.resources.length; i++)
        located.push({ resource: held.resources[i]!, file: f.file, held, i });
      continue;
    }
    if (f.text === undefined) {
      // The source skipped a file the cache no longer holds: never read as "no resources there".
      problems.push({
        file: f.file,
        line: 1,
        col: 1,
        message: 'internal: this unchanged file was not re-read; the next poll reads it again',
      });
      continue;
    }
    const parse: FileParse = { problems: [], located: [] };
    parseFile({ file: f.file, text: f.text }, kinds, parse.problems, parse.located, cache?.oneShot !== true);
    if (cache) cache.parsed++;
    // The file's documents (and the parser's events they hold) go now, not at the end of the revision.
    const entry = toCached(parse, f.text, key !== undefined);
    if (key !== undefined) {
      cache!.packed++;
      next.set(key, entry);
    }
    problems.push(...parse.problems);
    for (let i = 0; i < entry.resources.length; i++)
      located.push({ resource: entry.resources[i]!, file: f.file, held: entry, i });
  }
  cache?.replace(next);

  const reparsed: Reparsed = new Map();
  const byKey = new Map<string, Located>();
  const unique: Located[] = [];
  for (const l of located) {
    const first = byKey.get(l.resource.key);
    if (first) {
      problems.push(
        at(
          l,
          ['metadata', 'name'],
          `duplicate ${l.resource.key}: already defined at ${first.resource.origin}`,
          reparsed,
        ),
      );
      continue;
    }
    byKey.set(l.resource.key, l);
    unique.push(l);
  }
  const resources = unique.map((l) => l.resource);
  for (const kind of kinds.values()) {
    for (const p of kind.validateAll?.(resources.filter((r) => r.kind === kind.kind)) ?? []) {
      const l = byKey.get(p.key);
      if (l) problems.push(at(l, p.path, p.message, reparsed));
    }
  }
  problems.sort((a, b) =>
    a.file !== b.file ? (a.file < b.file ? -1 : 1) : a.line - b.line || a.col - b.col,
  );
  return problems.length === 0 ? { ok: true, resources } : { ok: false, problems, resources };
}

/** Whether a repository path is a manifest under `dir` ('' or '.' = the whole tree). */
export function isManifestPath(path: string, dir: string): boolean {
  const inDir = dir === '' || dir === '.' || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
  return inDir && /\.ya?ml$/i.test(path);
}
