/**
 * Schema tooling shared by everything that validates input: the config, the
 * state file, the admin bodies. A shape is declared once as a TypeBox schema
 * (the TypeScript type is `Static<…>`, the defaults are its `default`s) and
 * checked by ajv with fixed options; {@link explain} turns ajv's errors into
 * messages that say what to write, keyed by the path of the value concerned.
 *
 * Annotations that ajv ignores but {@link explain} reads:
 * - `hints` on an object: unknown key → what to write instead;
 * - `errorMessage` on any schema: keyword → message (a template: `{value}` is
 *   the string written, `{allowed}` the enum's values, `{mean}` a did-you-mean).
 *
 * String rules that need more than a pattern are named formats: each is one
 * function that returns why a string does not match, used both by ajv and for
 * the message, so the check and its explanation cannot drift apart.
 */
import { suggest } from './suggest.js';
import { createRequire } from 'node:module';
import { importModule } from './dynamic-import.js';
import type { Ajv, ErrorObject, Options, ValidateFunction } from 'ajv';
import type { Static, TSchema } from 'typebox';
import { MAX_TIMER_MS, formatDuration, parseDuration } from './duration.js';
import type { PathSegment } from './yaml.js';

/** ajv as every steward schema is checked: all errors, no coercion, defaults filled, nothing dropped, strict. */
export const AJV_OPTIONS = Object.freeze({
  allErrors: true,
  coerceTypes: false,
  useDefaults: true,
  removeAdditional: false,
  strict: true,
  // errors carry their schema and data, which explain() reads (never echoing strings it was not told to)
  verbose: true,
} as const);

/** A named string rule: `check` returns why a string does not match it, or undefined. */
export interface Format {
  check(s: string): string | undefined;
  /** What to say when the value is not a string at all (e.g. a bare number for a duration). */
  notString?(v: unknown): string | undefined;
}

export type Formats = Readonly<Record<string, Format>>;

/** One problem: where (a path into the checked value) and the full message. */
export interface Issue {
  readonly path: readonly PathSegment[];
  readonly message: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; issues: Issue[] };

/** A compiled schema: validates in place (filling defaults) and explains what is wrong. */
export type Checker<T extends TSchema> = (data: unknown) => Checked<Static<T>>;

/**
 * Compiles `schema` (with the named formats it uses) into a {@link Checker};
 * `root` names the whole value in messages.
 * Each call builds its own ajv instance, so formats of one caller never leak
 * into another's schemas.
 */
export function compileSchema<T extends TSchema>(
  schema: T,
  formats: Formats = {},
  { root = 'the config' }: { root?: string } = {},
): Checker<T> {
  return checkerOf<T>(newAjv(formats).compile(schema), formats, { root });
}

const load = createRequire(import.meta.url);
let AjvClass: typeof Ajv | undefined;

/**
 * ajv itself, loaded by the first compile: a command whose schemas were compiled at build time (`steward
 * plan`: the config's standalone module, no state file yet) never loads it (≈ 15 ms of start-up, issue 12).
 */
function ajvClass(): typeof Ajv {
  AjvClass ??= (load('ajv') as { Ajv: typeof Ajv }).Ajv;
  return AjvClass;
}

/** The ajv every steward schema is compiled with (`code`: ajv's code options, for a build-time standalone module). */
export function newAjv(formats: Formats, code?: Options['code']): Ajv {
  const ajv = new (ajvClass())({ ...AJV_OPTIONS, ...(code ? { code } : {}) });
  ajv.addVocabulary(['hints', 'errorMessage']);
  for (const [name, def] of Object.entries(ajvFormats(formats))) ajv.addFormat(name, def);
  return ajv;
}

/**
 * An ES module of ajv's standalone code for `schema`: `SCHEMA` ({@link schemaText}) and
 * `make(ajvFormats(formats))` → the validate function {@link compileSchema} would compile. Self-contained (no
 * imports), so a build can put copies wherever its modules look for it. Build time only.
 *
 * `make` and the validate function are written as parenthesized function expressions, which V8 compiles
 * when it compiles the module rather than at their first call, so Node's compile cache (which keeps only
 * what was compiled with the module) holds their code too: the config's validator is 170 KB of code, and its
 * first call cost ≈ 5 ms of compiling at every start on Node 24; now ≈ 0.4 ms (issue 12, start-up).
 */
export async function standaloneModule(schema: TSchema, formats: Formats): Promise<string> {
  // A CommonJS module: its exports (with their own `default`) arrive as the namespace's default.
  const standalone = (
    (await import('ajv/dist/standalone/index.js')) as unknown as {
      default: { default: (ajv: Ajv, validate: ValidateFunction) => string };
    }
  ).default.default;
  const { _ } = await import('ajv');
  const ajv = newAjv(formats, { source: true, formats: _`formats` });
  const code = standalone(ajv, ajv.compile(schema));
  return [
    '// Generated from the schema by core/schema.ts standaloneModule (ajv standalone code).',
    `export const SCHEMA = ${JSON.stringify(schemaText(schema))};`,
    'export const make = (function make(formats) {',
    '  const module = { exports: {} };',
    '  const exports = module.exports;',
    compiledWhenLoaded(code),
    '  return module.exports;',
    '});',
    '',
  ].join('\n');
}

/**
 * ajv's standalone code (`"use strict";module.exports = v;module.exports.default = v;…function v(…){…}`,
 * with `v` its last function) with `v` a parenthesized function expression. Code of any other shape, or that
 * names `v` before its definition (a recursive `$ref`: `{validate: v}`, which only a hoisted declaration
 * satisfies), is returned as ajv wrote it: the same validator, compiled at its first call.
 */
function compiledWhenLoaded(code: string): string {
  const head = /^"use strict";module\.exports = (validate\d+);module\.exports\.default = \1;/.exec(code);
  const name = head?.[1];
  const at = name ? code.indexOf(`function ${name}(`) : -1;
  if (!head || !name || at < 0 || code.indexOf('function ', at + 1) >= 0 || !code.trimEnd().endsWith('}'))
    return code;
  const rest = code.slice(head[0].length, at);
  if (new RegExp(`\\b${name}\\b`).test(rest)) return code;
  const fn = code.slice(at).trimEnd();
  return `"use strict";${rest}const ${name} = (${fn});module.exports = ${name};module.exports.default = ${name};`;
}

/**
 * What a precompiled validator records of the schema it was made from, compared whole before it is used (a
 * stale one is not): the config schema's text is 13 KB and 0.1 ms to write, less than loading node:crypto
 * to hash it (≈ 6 ms on Node 24, at every start).
 */
export function schemaText(schema: TSchema): string {
  return JSON.stringify(schema);
}

/**
 * The checker of a build's precompiled validator for `schema` (the module {@link standaloneModule} wrote, at
 * `url`), when that module was made from this very schema; else undefined and the caller compiles it. A
 * module that is absent (sources run through tsx, a build without it) or stale (the schema changed since) is
 * never used: its recorded schema text is compared whole first.
 */
export async function precompiledChecker<T extends TSchema>(
  url: URL,
  schema: T,
  formats: Formats = {},
  opts: { root?: string } = {},
): Promise<Checker<T> | undefined> {
  try {
    const m = await importModule<{
      SCHEMA: string;
      make: (formats: ReturnType<typeof ajvFormats>) => ValidateFunction;
    }>(url.href);
    if (m.SCHEMA === schemaText(schema)) return checkerOf<T>(m.make(ajvFormats(formats)), formats, opts);
  } catch {
    // not built
  }
  return undefined;
}

/** The ajv format definitions of named formats (a standalone module built from a schema needs the same ones). */
export function ajvFormats(
  formats: Formats,
): Record<string, { type: 'string'; validate: (s: string) => boolean }> {
  return Object.fromEntries(
    Object.entries(formats).map(([name, f]) => [
      name,
      { type: 'string' as const, validate: (s: string) => f.check(s) === undefined },
    ]),
  );
}

/** A {@link Checker} around a validate function ajv compiled (now, or at build time as standalone code). */
export function checkerOf<T extends TSchema>(
  validate: ValidateFunction,
  formats: Formats,
  { root = 'the config' }: { root?: string } = {},
): Checker<T> {
  return (data) => {
    if (validate(data)) return { ok: true, value: data as Static<T> };
    return { ok: false, issues: explain(validate.errors ?? [], data, formats, root) };
  };
}

/**
 * The defaults a schema declares, as validation would fill them into an empty
 * value: an object's own default with its properties' defaults inside, down
 * through every object that has a default itself. No ajv needed.
 */
export function defaultsOf(schema: TSchema, root = true): unknown {
  const s = schema as SchemaObject;
  const own = s['default'];
  const props = s['properties'] as Record<string, TSchema> | undefined;
  if (s['type'] !== 'object' || !props || (own === undefined && !root)) return structuredClone(own);
  const out: Record<string, unknown> =
    typeof own === 'object' && own !== null ? (structuredClone(own) as Record<string, unknown>) : {};
  for (const [k, p] of Object.entries(props)) {
    const d = defaultsOf(p, false);
    if (d !== undefined) out[k] = d;
  }
  return out;
}

/** Largest integer an `Int` schema accepts: beyond it numbers are no longer exact. */
export const MAX_INT = Number.MAX_SAFE_INTEGER;

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

type SchemaObject = Record<string, unknown>;

/** ajv's errors as steward's messages, one per path (a wrong type, else the first one found). */
export function explain(
  errors: readonly ErrorObject[],
  data: unknown,
  formats: Formats = {},
  root = 'the config',
): Issue[] {
  const branches = errors
    .filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf')
    .map((e) => `${e.schemaPath}/`);
  const out = new Map<string, Issue & { keyword: string }>();
  for (const e of errors) {
    if (branches.some((b) => e.schemaPath.startsWith(b))) continue; // a failed alternative: its parent speaks
    if (e.propertyName !== undefined && e.keyword !== 'propertyNames') continue; // reported as propertyNames
    const issue = explainOne(e, toPath(e.instancePath, data), formats, root);
    const key = JSON.stringify(issue.path);
    const seen = out.get(key);
    // a wrong type says the most: it wins over whatever else its value breaks
    if (!seen || (e.keyword === 'type' && seen.keyword !== 'type'))
      out.set(key, { ...issue, keyword: e.keyword });
  }
  return [...out.values()].map(({ path, message }) => ({ path, message }));
}

function explainOne(e: ErrorObject, at: PathSegment[], formats: Formats, root: string): Issue {
  const parent = (e.parentSchema ?? {}) as SchemaObject;
  const params = e.params as Record<string, unknown>;
  const custom = (parent['errorMessage'] as Record<string, string> | undefined)?.[e.keyword];
  const say = (message: string, path: PathSegment[] = at): Issue => ({
    path,
    message: `${label(path, root)}: ${message}`,
  });
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params['additionalProperty']);
      const path = [...at, key];
      const known = Object.keys((parent['properties'] as SchemaObject | undefined) ?? {});
      const hints = (parent['hints'] as Record<string, string> | undefined) ?? {};
      return { path, message: unknownKeyMessage(path, key, known, hints) };
    }
    case 'required': {
      const path = [...at, String(params['missingProperty'])];
      return { path, message: `missing required key "${showPath(path)}"` };
    }
    case 'propertyNames': {
      const key = String(params['propertyName']);
      const format = formats[String((parent['propertyNames'] as SchemaObject | undefined)?.['format'])];
      return say(format?.check(key) ?? custom ?? 'is not an allowed key', [...at, key]);
    }
    case 'type': {
      const format = formats[String(parent['format'])];
      return say(format?.notString?.(e.data) ?? custom ?? typeMessage(parent, e.data));
    }
    case 'format': {
      const check = formats[String(params['format'])]?.check(String(e.data));
      return say(check ?? custom ?? `must be ${String(params['format'])}`);
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      if (e.keyword === 'maximum' && params['limit'] === MAX_INT) return say('is too large');
      return say(`must be ${rangeText(parent)}, got ${String(e.data)}`);
    case 'enum': {
      const allowed = (params['allowedValues'] as unknown[]).map(String);
      if (typeof e.data !== 'string') return say(typeMessage({ type: 'string' }, e.data));
      const near = suggest(e.data, allowed);
      const fill = (t: string): string =>
        t
          .replace('{value}', e.data as string)
          .replace('{allowed}', allowed.join(', '))
          .replace('{mean}', near === undefined ? '' : `did you mean "${near}"? `);
      const mean = near === undefined ? '' : ` (did you mean "${near}"?)`;
      return say(custom ? fill(custom) : `expected one of ${allowed.join(', ')}, got "${e.data}"${mean}`);
    }
    default:
      return say(custom ?? e.message ?? e.keyword);
  }
}

/** A JSON pointer (`/alerts/0/url`) as path segments; an index into a list becomes a number. */
function toPath(pointer: string, data: unknown): PathSegment[] {
  if (pointer === '') return [];
  const out: PathSegment[] = [];
  let node = data;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const isIndex = Array.isArray(node) && /^\d+$/.test(seg);
    out.push(isIndex ? Number(seg) : seg);
    node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[seg] : undefined;
  }
  return out;
}

function typeMessage(schema: SchemaObject, v: unknown): string {
  switch (schema['type']) {
    case 'object': {
      const props = (schema['properties'] ?? {}) as Record<string, SchemaObject>;
      // keys the writer must give: the required ones without a default
      const required = ((schema['required'] as string[] | undefined) ?? []).filter(
        (k) => props[k]?.['default'] === undefined,
      );
      if (v === null && required.length > 0) return `expected a mapping with at least ${required.join(', ')}`;
      return `expected a mapping, got ${describe(v)}`;
    }
    case 'array':
      return `expected a list, got ${describe(v)}`;
    case 'integer':
      return `expected an integer, got ${describe(v)}`;
    case 'number':
      return `expected a number, got ${describe(v)}`;
    case 'boolean':
      return `expected true or false, got ${describe(v)}`;
    default: {
      const quote = typeof v === 'number' || typeof v === 'boolean' ? ' (quote it if you meant text)' : '';
      return `expected a string, got ${describe(v)}${quote}`;
    }
  }
}

/** `greater than 0 and at most 100`, from a number schema's bounds. */
function rangeText(s: SchemaObject): string {
  const parts: string[] = [];
  if (typeof s['exclusiveMinimum'] === 'number') parts.push(`greater than ${s['exclusiveMinimum']}`);
  else if (typeof s['minimum'] === 'number') parts.push(`at least ${s['minimum']}`);
  if (typeof s['maximum'] === 'number' && s['maximum'] !== MAX_INT) parts.push(`at most ${s['maximum']}`);
  else if (typeof s['exclusiveMaximum'] === 'number') parts.push(`less than ${s['exclusiveMaximum']}`);
  return parts.join(' and ');
}

function unknownKeyMessage(
  keyPath: readonly PathSegment[],
  key: string,
  known: readonly string[],
  hints: Readonly<Record<string, string>>,
): string {
  const head = `unknown key "${showPath(keyPath)}"`;
  const hint = Object.hasOwn(hints, key) ? hints[key] : undefined;
  if (hint !== undefined) return `${head} (${hint})`;
  const stem = key.endsWith('Ms') ? key.slice(0, -2) : '';
  if (stem !== '' && known.includes(stem)) return `${head} (write "${stem}" with a unit, e.g. ${stem}: 30s)`;
  const near = suggest(key, known);
  return near === undefined ? head : `${head} (did you mean "${near}"?)`;
}

/** `guardrails.fieldPolicy.Ec2Instance["/spec/instanceType"]`, `alerts[0].url`. */
export function showPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** A path for the head of a message: the whole value is `root`. */
export function label(path: readonly PathSegment[], root = 'the config'): string {
  return path.length === 0 ? root : showPath(path);
}

/** A type name for messages; only numbers and booleans are echoed (strings may be secrets). */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v;
}

// ---------------------------------------------------------------------------
// Formats more than one layer uses
// ---------------------------------------------------------------------------

/** Text that is not blank. */
export const textFormat: Format = {
  check: (s) => (s.trim() === '' ? 'must not be empty' : undefined),
};

/** A duration such as `30s` or `1h30m` between `minMs` and the longest timer Node honours. */
export function durationFormat(minMs: number): Format {
  const parse = (v: string | number): number | string => {
    try {
      return parseDuration(v);
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  };
  return {
    check(s) {
      const ms = parse(s);
      if (typeof ms === 'string') return ms;
      if (ms >= minMs && ms <= MAX_TIMER_MS) return undefined;
      return `must be between ${formatDuration(minMs)} and ${formatDuration(MAX_TIMER_MS)}, got ${formatDuration(ms)}`;
    },
    notString: (v) =>
      typeof v === 'number' ? String(parse(v)) : `expected a duration such as 30s, got ${describe(v)}`,
  };
}

/** A filesystem path as written (it is resolved against the config's directory afterwards). */
export const pathFormat: Format = {
  check(s) {
    if (s.trim() === '') return 'must not be empty';
    if (s.includes('\0')) return 'must not contain a NUL character';
    if (s.startsWith('~'))
      return '"~" is not expanded; write an absolute path or one relative to the config file';
    return undefined;
  },
};

/**
 * Why `s` is not an http(s) URL without credentials, or undefined. The URL is
 * never echoed: webhook and endpoint URLs often carry a token.
 */
export function httpUrlProblem(s: string, credentialsInstead: string): string | undefined {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return 'is not a valid http(s) URL';
  }
  if (url.username !== '' || url.password !== '')
    return `must not embed credentials (user:password@); ${credentialsInstead}`;
  if (url.hostname === '') return 'has no host';
  return undefined;
}

/** An http:// or https:// URL (alert receivers, API endpoints). */
export const httpUrlFormat: Format = {
  check(s) {
    if (s.trim() === '') return 'must not be empty';
    if (!/^https?:\/\//i.test(s.trim())) return 'must be an http:// or https:// URL';
    return httpUrlProblem(s.trim(), 'put the secret in a file and reference it instead');
  },
};
