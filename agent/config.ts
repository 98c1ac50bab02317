/**
 * The agent config (`steward.yaml`), validated once at start-up and read-only
 * afterwards.
 *
 * - Every key is known: an unknown key, a wrong type, an out-of-range value or
 *   a missing required key is a problem reported as `file:line:col: message`.
 *   All problems are collected, then thrown together as one CONFIG_INVALID.
 * - Every default lives in {@link DEFAULTS}.
 * - Keys that people commonly write but that steward does not take (inline
 *   secrets, `*Ms` numbers instead of durations, `source.branch`, …) fail
 *   with a hint that names the key to use instead.
 * - Secrets are only ever read from files or environment variables, after the
 *   rest of the config is valid; their content never appears in a message.
 * - Relative paths are resolved against the directory of the config file.
 * - The result is a deep-frozen {@link Config}.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP, isIPv6 } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProvidersConfig } from '../providers/registry.js';
import { ALERT_EVENT_NAMES } from './alert-events.js';
import { MAX_TIMER_MS, formatDuration, parseDuration } from '../core/duration.js';
import { type SourceProblem, StewardError, formatProblem } from '../core/errors.js';
import { FORBIDDEN_KEYS, type PathSegment, type YamlDocument, parseYaml } from '../core/yaml.js';

// ---------------------------------------------------------------------------
// The contract
// ---------------------------------------------------------------------------

export type Mode = 'observe' | 'enforce';
export type FieldPolicy = 'revert' | 'report';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export const MODES: readonly Mode[] = Object.freeze(['observe', 'enforce']);
export const FIELD_POLICIES: readonly FieldPolicy[] = Object.freeze(['revert', 'report']);
export const LOG_LEVELS: readonly LogLevel[] = Object.freeze([
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
]);

/** Alert events a receiver can subscribe to (SPEC §8): defined once, in alert-events.ts. */
export const ALERT_EVENTS: readonly string[] = ALERT_EVENT_NAMES;

export interface SourceAuth {
  readonly username: string;
  /** Read from `passwordFile` (one trailing newline trimmed) or `passwordEnv`. Never log it. */
  readonly password: string;
}

export interface SourceConfig {
  /** `http(s)://…` as written, or the absolute path of a local repository. */
  readonly url: string;
  readonly kind: 'http' | 'local';
  readonly ref: string;
  /** Folder of manifests inside the repo: `.` for the root, else a clean relative POSIX path (no `./`, no trailing `/`). */
  readonly path: string;
  readonly intervalMs: number;
  readonly auth: SourceAuth | null;
}

export type { ProvidersConfig };

export interface ReconcileConfig {
  readonly intervalMs: number;
  /** Mode used when the state store has none persisted yet. */
  readonly mode: Mode;
}

export interface GuardrailsConfig {
  readonly maxActionsPerCycle: number;
  readonly massDrift: {
    readonly maxDrifted: number;
    readonly maxDriftedPercent: number;
    readonly minManaged: number;
  };
  readonly rateLimit: { readonly actionsPerMinute: number; readonly burst: number };
  readonly backoff: {
    readonly baseMs: number;
    readonly factor: number;
    readonly maxMs: number;
    readonly jitter: number;
  };
  readonly nonConvergence: { readonly alertAfterCycles: number };
  readonly soak: { readonly observeCycles: number };
  /** kind → JSON pointer (`/spec/…`) → policy; overrides the provider's defaults for those fields. */
  readonly fieldPolicy: Readonly<Record<string, Readonly<Record<string, FieldPolicy>>>>;
}

export interface AdminConfig {
  /** `host` is bare (an IPv6 address without brackets); port 0 lets the OS choose. */
  readonly listen: { readonly host: string; readonly port: number };
  /** Absolute path; the admin server generates the token (mode 0600) if the file does not exist. */
  readonly tokenFile: string;
  /** Absolute path of the push-webhook HMAC key, read by the admin server; null disables the webhook route. */
  readonly webhookSecretFile: string | null;
}

export interface AlertConfig {
  /** Treat as a secret in logs: webhook URLs often carry a token in their path. */
  readonly url: string;
  /** HMAC-SHA256 signing key, or null for unsigned alerts. Never log it. */
  readonly secret: string | null;
  readonly events: readonly string[];
  readonly timeoutMs: number;
}

export interface Config {
  /** Absolute path of the config file (`<embedded>` if none). */
  readonly file: string;
  readonly source: SourceConfig;
  readonly providers: ProvidersConfig;
  readonly reconcile: ReconcileConfig;
  readonly guardrails: GuardrailsConfig;
  readonly admin: AdminConfig;
  readonly alerts: readonly AlertConfig[];
  readonly state: { readonly dir: string };
  readonly log: { readonly level: LogLevel };
}

export interface ParseOptions {
  /** Where `passwordEnv` / `secretEnv` are looked up; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Reads a secret file; defaults to reading it as UTF-8. */
  readSecret?: (path: string) => string;
}

/** The name given to parseConfig for a config that has no file; relative paths then resolve against the cwd. */
export const EMBEDDED = '<embedded>';

// ---------------------------------------------------------------------------
// Defaults: the one place where they live
// ---------------------------------------------------------------------------

/**
 * Every default, in the units of {@link Config} (milliseconds for durations).
 * Only `source.url` has none.
 */
export const DEFAULTS = deepFreeze({
  source: {
    /** Branch or tag to follow. */
    ref: 'main',
    /** Manifests are read from the whole repository. */
    path: '.',
    /** Ask the remote for its ref every minute. */
    intervalMs: 60_000,
  },
  reconcile: {
    /** A level-triggered cycle every 30 s. */
    intervalMs: 30_000,
    /** Safe by default: detect and report, act only once someone opts in. */
    mode: 'observe' as Mode,
  },
  guardrails: {
    /** At most 10 resources changed per cycle. */
    maxActionsPerCycle: 10,
    /** Freeze when more than 50 resources, or more than 30 % of at least 5 managed ones, would change. */
    massDrift: { maxDrifted: 50, maxDriftedPercent: 30, minManaged: 5 },
    /** Token bucket: 60 actions a minute, bursts of 10. */
    rateLimit: { actionsPerMinute: 60, burst: 10 },
    /** After a failed or non-sticking apply: 30 s · 2^(n−1), capped at 30 min, ±20 % jitter. */
    backoff: { baseMs: 30_000, factor: 2, maxMs: 1_800_000, jitter: 0.2 },
    /** Alert when a resource is still drifted after 3 cycles that acted on it. */
    nonConvergence: { alertAfterCycles: 3 },
    /** A new revision is observed for one cycle before it is acted on. */
    soak: { observeCycles: 1 },
    /** No overrides: each provider's own defaults apply (disruptive fields are `report`). */
    fieldPolicy: {} as Record<string, Record<string, FieldPolicy>>,
  },
  admin: {
    /** Loopback only. */
    listen: { host: '127.0.0.1', port: 7420 },
    /** The token file is `<state.dir>/admin-token`. */
    tokenFileName: 'admin-token',
    /** No webhook secret: the push-webhook route is disabled. */
    webhookSecretFile: null as string | null,
  },
  alerts: {
    /** Each alert POST gives up after 5 s (and is retried by the alerter). */
    timeoutMs: 5_000,
    /** A receiver gets every event unless it lists some. */
    events: ALERT_EVENTS,
  },
  state: {
    /**
     * `state`, next to the config file. Chosen over `/var/lib/steward` so that
     * an unprivileged run works out of the box while the location stays stable
     * across restarts (it does not depend on the working directory), which the
     * persisted freeze needs. Production configs should set an absolute dir,
     * e.g. `/var/lib/steward` (the systemd unit's StateDirectory).
     */
    dir: 'state',
  },
  log: {
    level: 'info' as LogLevel,
  },
});

/** Shortest source/reconcile interval: anything below is a busy loop rather than a schedule. */
const MIN_INTERVAL_MS = 100;

// ---------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------

/**
 * Validates a config text and returns the fully defaulted, deep-frozen Config.
 * `file` names the config in messages and anchors relative paths (its
 * directory); pass {@link EMBEDDED} when there is no file.
 *
 * @throws StewardError CONFIG_INVALID listing every problem (details.problems),
 *   or SECRET_READ when a referenced secret file / variable cannot be read.
 */
export function parseConfig(text: string, file: string, opts: ParseOptions = {}): Config {
  const absFile = file === EMBEDDED ? EMBEDDED : resolve(file);
  const baseDir = file === EMBEDDED ? process.cwd() : dirname(absFile);
  const ctx: Ctx = { file, baseDir, doc: null, problems: [] };

  const parsed = parseYaml(text, file);
  if (!parsed.ok) throw invalid([parsed.problem]);
  const [doc, second] = parsed.docs;
  ctx.doc = doc ?? null;
  if (second) {
    problemAt(ctx, second.start, `the config must be a single YAML document; found ${parsed.docs.length}`);
  }
  const draft = readRoot(ctx, doc?.value);
  if (ctx.problems.length > 0) throw invalid(ctx.problems);

  const config = resolveSecrets(ctx, draft, opts.env ?? process.env, opts.readSecret ?? readSecretFile);
  return deepFreeze({ file: absFile, ...config });
}

/**
 * Reads and validates the config file at `path`.
 *
 * @throws StewardError CONFIG_READ when the file cannot be read, else as {@link parseConfig}.
 */
export async function loadConfig(path: string, opts: { env?: NodeJS.ProcessEnv } = {}): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new StewardError(
      'CONFIG_READ',
      `cannot read config file "${path}": ${ioReason(e)}`,
      { file: path },
      { cause: e },
    );
  }
  return parseConfig(text, path, opts.env ? { env: opts.env } : {});
}

function invalid(problems: SourceProblem[]): StewardError {
  const sorted = [...problems].sort((a, b) => a.line - b.line || a.col - b.col);
  return new StewardError('CONFIG_INVALID', sorted.map(formatProblem).join('\n'), { problems: sorted });
}

// ---------------------------------------------------------------------------
// The walker: problems, paths, typed readers
// ---------------------------------------------------------------------------

type Path = readonly PathSegment[];

interface Ctx {
  /** The config's name as given, used in messages. */
  readonly file: string;
  /** Relative paths resolve here. */
  readonly baseDir: string;
  doc: YamlDocument | null;
  readonly problems: SourceProblem[];
}

function problemAt(ctx: Ctx, pos: { line: number; col: number }, message: string): void {
  ctx.problems.push({ file: ctx.file, line: pos.line, col: pos.col, message });
}

/** Records a problem at the place where `path` is written (its key, or the nearest written ancestor). */
function report(ctx: Ctx, path: Path, message: string): void {
  problemAt(ctx, locate(ctx, path), message);
}

/** Position of a path; an empty node (e.g. a bare `-` item) has no offset of its own, so its parent's is used. */
function locate(ctx: Ctx, path: Path): { line: number; col: number } {
  for (let n = path.length; ctx.doc && n >= 0; n--) {
    const pos = ctx.doc.locate(path.slice(0, n));
    if (pos.line >= 1 && pos.col >= 1) return pos;
  }
  return { line: 1, col: 1 };
}

/** Records `<key path>: message`. */
function complain(ctx: Ctx, path: Path, message: string): void {
  report(ctx, path, `${label(path)}: ${message}`);
}

/** `guardrails.fieldPolicy.Ec2Instance["/spec/instanceType"]`, `alerts[0].url`. */
export function showPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

function label(path: Path): string {
  return path.length === 0 ? 'the config' : showPath(path);
}

/** A type name for messages; only numbers and booleans are echoed (strings may be secrets). */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v;
}

/** YAML `key:` with no value is null: it means the same as leaving the key out. */
function isAbsent(v: unknown): v is undefined | null {
  return v === undefined || v === null;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks that `value` is a mapping whose keys are all in `keys`. Unknown keys
 * are reported with a hint (from `hints`) or a did-you-mean; forbidden keys
 * (`__proto__`, …) are reported and skipped. Returns a fresh null-prototype
 * copy holding only the known keys, or undefined when absent or not a mapping.
 */
function mapping<K extends string>(
  ctx: Ctx,
  path: Path,
  value: unknown,
  keys: readonly K[],
  hints: Readonly<Record<string, string>> = {},
): Partial<Record<K, unknown>> | undefined {
  if (isAbsent(value)) return undefined;
  if (!isMapping(value)) {
    complain(ctx, path, `expected a mapping, got ${describe(value)}`);
    return undefined;
  }
  const out: Partial<Record<K, unknown>> = Object.create(null);
  const known: readonly string[] = keys;
  for (const [k, v] of Object.entries(value)) {
    const keyPath = [...path, k];
    if (FORBIDDEN_KEYS.has(k)) report(ctx, keyPath, `key "${showPath(keyPath)}" is not allowed`);
    else if (known.includes(k)) out[k as K] = v;
    else report(ctx, keyPath, unknownKeyMessage(keyPath, k, known, hints));
  }
  return out;
}

function unknownKeyMessage(
  keyPath: Path,
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

/** Reports a missing required key (at the key if it is written as null, else at its parent). */
function requireKey(ctx: Ctx, path: Path, value: unknown): void {
  if (isAbsent(value)) report(ctx, path, `missing required key "${showPath(path)}"`);
}

/** A non-empty string, or undefined (absent, or reported). */
function str(ctx: Ctx, path: Path, v: unknown): string | undefined {
  if (isAbsent(v)) return undefined;
  if (typeof v !== 'string') {
    const quote = typeof v === 'number' || typeof v === 'boolean' ? ' (quote it if you meant text)' : '';
    complain(ctx, path, `expected a string, got ${describe(v)}${quote}`);
    return undefined;
  }
  if (v.trim() === '') {
    complain(ctx, path, 'must not be empty');
    return undefined;
  }
  return v;
}

/** An integer in [min, max]. */
function int(
  ctx: Ctx,
  path: Path,
  v: unknown,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (isAbsent(v)) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    complain(ctx, path, `expected an integer, got ${describe(v)}`);
    return undefined;
  }
  if (v < min || v > max) {
    const unbounded = max === Number.MAX_SAFE_INTEGER;
    complain(
      ctx,
      path,
      unbounded && v > max
        ? 'is too large'
        : `must be ${unbounded ? `at least ${min}` : `between ${min} and ${max}`}, got ${v}`,
    );
    return undefined;
  }
  return v;
}

interface NumRange {
  /** Inclusive lower bound, unless `above` is set. */
  min?: number;
  /** Exclusive lower bound. */
  above?: number;
  /** Inclusive upper bound. */
  max?: number;
}

/** A finite number within the given range. */
function num(ctx: Ctx, path: Path, v: unknown, range: NumRange): number | undefined {
  if (isAbsent(v)) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    complain(ctx, path, `expected a number, got ${describe(v)}`);
    return undefined;
  }
  const low = range.above !== undefined ? v <= range.above : range.min !== undefined && v < range.min;
  const high = range.max !== undefined && v > range.max;
  if (low || high) {
    complain(ctx, path, `must be ${rangeText(range)}, got ${v}`);
    return undefined;
  }
  return v;
}

function rangeText(r: NumRange): string {
  const parts: string[] = [];
  if (r.above !== undefined) parts.push(`greater than ${r.above}`);
  else if (r.min !== undefined) parts.push(`at least ${r.min}`);
  if (r.max !== undefined) parts.push(`at most ${r.max}`);
  return parts.join(' and ');
}

/** A duration (`30s`, `1h30m`) in [min, MAX_TIMER_MS], as milliseconds. */
function duration(ctx: Ctx, path: Path, v: unknown, min: number): number | undefined {
  if (isAbsent(v)) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') {
    complain(ctx, path, `expected a duration such as 30s, got ${describe(v)}`);
    return undefined;
  }
  let ms: number;
  try {
    ms = parseDuration(v);
  } catch (e) {
    complain(ctx, path, e instanceof Error ? e.message : String(e));
    return undefined;
  }
  if (ms < min || ms > MAX_TIMER_MS) {
    complain(
      ctx,
      path,
      `must be between ${formatDuration(min)} and ${formatDuration(MAX_TIMER_MS)}, got ${formatDuration(ms)}`,
    );
    return undefined;
  }
  return ms;
}

/** One of a fixed set of strings. */
function oneOf<T extends string>(ctx: Ctx, path: Path, v: unknown, allowed: readonly T[]): T | undefined {
  const s = str(ctx, path, v);
  if (s === undefined) return undefined;
  if ((allowed as readonly string[]).includes(s)) return s as T;
  const near = suggest(s, allowed);
  const mean = near === undefined ? '' : ` (did you mean "${near}"?)`;
  complain(ctx, path, `expected one of ${allowed.join(', ')}, got "${s}"${mean}`);
  return undefined;
}

/** A list, or undefined (absent, or reported). */
function list(ctx: Ctx, path: Path, v: unknown): readonly unknown[] | undefined {
  if (isAbsent(v)) return undefined;
  if (!Array.isArray(v)) {
    complain(ctx, path, `expected a list, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

/** A filesystem path, resolved against the config file's directory. */
function fsPath(ctx: Ctx, path: Path, v: unknown): string | undefined {
  const s = str(ctx, path, v);
  if (s === undefined) return undefined;
  if (s.includes('\0')) {
    complain(ctx, path, 'must not contain a NUL character');
    return undefined;
  }
  if (s.startsWith('~')) {
    complain(ctx, path, '"~" is not expanded; write an absolute path or one relative to the config file');
    return undefined;
  }
  return resolve(ctx.baseDir, s);
}

/** The closest candidate by edit distance (or prefix), if close enough to be a likely typo. */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  const lower = input.toLowerCase();
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const cl = c.toLowerCase();
    const d = editDistance(lower, cl);
    const prefix = Math.min(lower.length, cl.length) >= 3 && (cl.startsWith(lower) || lower.startsWith(cl));
    if (d > Math.max(2, Math.floor(c.length / 3)) && !prefix) continue;
    if (d < bestScore) {
      best = c;
      bestScore = d;
    }
  }
  return best;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = row;
  }
  return prev[b.length]!;
}

// ---------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------

/** Where a secret comes from; read only once the whole config is valid. */
interface SecretRef {
  readonly path: Path;
  readonly from: 'file' | 'env';
  /** Absolute file path or environment variable name. */
  readonly name: string;
}

/** The config before secrets are read: the same shape with references in place of secret values. */
interface Draft extends Omit<Config, 'file' | 'source' | 'alerts'> {
  readonly source: Omit<SourceConfig, 'auth'> & {
    readonly auth: { readonly username: string; readonly password: SecretRef } | null;
  };
  readonly alerts: ReadonlyArray<Omit<AlertConfig, 'secret'> & { readonly secret: SecretRef | null }>;
}

const TOP_KEYS = [
  'source',
  'providers',
  'reconcile',
  'guardrails',
  'admin',
  'alerts',
  'state',
  'log',
] as const;

function readRoot(ctx: Ctx, value: unknown): Draft {
  if (isAbsent(value)) report(ctx, [], 'the config is empty: at least source.url is required');
  const m =
    mapping(ctx, [], value, TOP_KEYS, { provider: 'use "providers"', alert: 'use "alerts", a list' }) ?? {};
  const state = readState(ctx, m.state);
  return {
    source: readSource(ctx, m.source, isMapping(value)),
    providers: readProviders(ctx, m.providers),
    reconcile: readReconcile(ctx, m.reconcile),
    guardrails: readGuardrails(ctx, m.guardrails),
    admin: readAdmin(ctx, m.admin, state.dir),
    alerts: readAlerts(ctx, m.alerts),
    state,
    log: readLog(ctx, m.log),
  };
}

const SOURCE_HINTS = {
  branch: 'use "ref"',
  tag: 'use "ref"',
  dir: 'use "path"',
  folder: 'use "path"',
  password: 'secrets are never written inline: use auth.passwordFile or auth.passwordEnv',
  token: 'secrets are never written inline: use auth.passwordFile or auth.passwordEnv',
};

function readSource(ctx: Ctx, value: unknown, reportMissing: boolean): Draft['source'] {
  const p = ['source'];
  const m = mapping(ctx, p, value, ['url', 'ref', 'path', 'interval', 'auth'] as const, SOURCE_HINTS) ?? {};
  if (reportMissing && (isAbsent(value) || isMapping(value))) requireKey(ctx, [...p, 'url'], m.url);
  const where = readSourceUrl(ctx, [...p, 'url'], m.url);
  const auth = readAuth(ctx, [...p, 'auth'], m.auth);
  if (auth && where?.kind === 'local')
    complain(ctx, [...p, 'auth'], 'only applies to http(s) sources; remove it for a local repository');
  return {
    url: where?.url ?? '',
    kind: where?.kind ?? 'http',
    ref: readRef(ctx, [...p, 'ref'], m.ref) ?? DEFAULTS.source.ref,
    path: readRepoPath(ctx, [...p, 'path'], m.path) ?? DEFAULTS.source.path,
    intervalMs: duration(ctx, [...p, 'interval'], m.interval, MIN_INTERVAL_MS) ?? DEFAULTS.source.intervalMs,
    auth,
  };
}

const ONLY_HTTP_OR_LOCAL =
  'steward fetches over smart HTTP(S) (https://…) or reads a local repository path in place';

/** Classifies source.url; the URL itself is never echoed (it could carry a token). */
function readSourceUrl(
  ctx: Ctx,
  path: Path,
  v: unknown,
): { url: string; kind: 'http' | 'local' } | undefined {
  const s = str(ctx, path, v)?.trim();
  if (s === undefined) return undefined;
  if (/^[^/\s:@]+@[^/\s:]+:/.test(s)) {
    complain(ctx, path, `SSH (user@host:path) is not supported: ${ONLY_HTTP_OR_LOCAL}`);
    return undefined;
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(s)?.[1]?.toLowerCase();
  if (scheme === 'http' || scheme === 'https') {
    const url = httpUrl(ctx, path, s);
    return url === undefined ? undefined : { url, kind: 'http' };
  }
  if (scheme === 'file') return localFromFileUrl(ctx, path, s);
  if (scheme !== undefined) {
    complain(ctx, path, `scheme "${scheme}" is not supported: ${ONLY_HTTP_OR_LOCAL}`);
    return undefined;
  }
  const dir = fsPath(ctx, path, s);
  return dir === undefined ? undefined : { url: dir, kind: 'local' };
}

/** An http(s) URL without embedded credentials; returned as written. Never echoes the URL. */
function httpUrl(ctx: Ctx, path: Path, s: string): string | undefined {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    complain(ctx, path, 'is not a valid http(s) URL');
    return undefined;
  }
  if (url.username !== '' || url.password !== '') {
    const instead =
      path[0] === 'source'
        ? 'set source.auth.username and source.auth.passwordFile (or passwordEnv) instead'
        : 'put the secret in a file and reference it instead';
    complain(ctx, path, `must not embed credentials (user:password@); ${instead}`);
    return undefined;
  }
  if (url.hostname === '') {
    complain(ctx, path, 'has no host');
    return undefined;
  }
  return s;
}

function localFromFileUrl(ctx: Ctx, path: Path, s: string): { url: string; kind: 'local' } | undefined {
  try {
    return { url: fileURLToPath(s), kind: 'local' };
  } catch {
    complain(ctx, path, 'is not a valid file:// URL (write file:///absolute/path, or just the path)');
    return undefined;
  }
}

/** A branch or tag name, checked against the rules of git-check-ref-format that matter here. */
function readRef(ctx: Ctx, path: Path, v: unknown): string | undefined {
  const s = str(ctx, path, v);
  if (s === undefined) return undefined;
  if (
    /[\s~^:?*[\\\0]/.test(s) ||
    s.includes('..') ||
    s.includes('@{') ||
    s.startsWith('-') ||
    s.startsWith('/') ||
    s.endsWith('/') ||
    s.endsWith('.lock')
  ) {
    complain(ctx, path, `"${s}" is not a valid branch or tag name`);
    return undefined;
  }
  return s;
}

/** A folder inside the repo: relative, no `..`; normalised to `.` (root) or `a/b`. */
function readRepoPath(ctx: Ctx, path: Path, v: unknown): string | undefined {
  if (v === '') return '.';
  const s = str(ctx, path, v);
  if (s === undefined) return undefined;
  if (s.startsWith('/') || s.includes('\\') || s.includes('\0')) {
    complain(ctx, path, 'must be a relative POSIX path inside the repository (e.g. fleet/prod)');
    return undefined;
  }
  const segments = s.split('/').filter((seg) => seg !== '' && seg !== '.');
  if (segments.includes('..')) {
    complain(ctx, path, 'must not contain ".." (it names a folder inside the repository)');
    return undefined;
  }
  return segments.length === 0 ? '.' : segments.join('/');
}

function readAuth(ctx: Ctx, path: Path, value: unknown): Draft['source']['auth'] {
  const hints = {
    password: 'secrets are never written inline: use passwordFile or passwordEnv',
    token: 'use passwordFile or passwordEnv (a token goes where the password would)',
    user: 'use "username"',
  };
  const m = mapping(ctx, path, value, ['username', 'passwordFile', 'passwordEnv'] as const, hints);
  if (!m) return null;
  requireKey(ctx, [...path, 'username'], m.username);
  const username = str(ctx, [...path, 'username'], m.username);
  const password = secretRef(ctx, path, m.passwordFile, m.passwordEnv, ['passwordFile', 'passwordEnv'], true);
  return username !== undefined && password ? { username, password } : null;
}

/** A secret given as `<x>File` or `<x>Env` (exactly one; both absent allowed unless required). */
function secretRef(
  ctx: Ctx,
  parent: Path,
  fileValue: unknown,
  envValue: unknown,
  [fileKey, envKey]: readonly [string, string],
  required: boolean,
): SecretRef | null {
  if (!isAbsent(fileValue) && !isAbsent(envValue)) {
    complain(ctx, parent, `set either ${fileKey} or ${envKey}, not both`);
    return null;
  }
  if (!isAbsent(fileValue)) {
    const file = fsPath(ctx, [...parent, fileKey], fileValue);
    return file === undefined ? null : { path: [...parent, fileKey], from: 'file', name: file };
  }
  if (!isAbsent(envValue)) {
    const name = str(ctx, [...parent, envKey], envValue);
    if (name === undefined) return null;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      complain(ctx, [...parent, envKey], 'must be an environment variable name (letters, digits, _)');
      return null;
    }
    return { path: [...parent, envKey], from: 'env', name };
  }
  if (required) complain(ctx, parent, `needs ${fileKey} or ${envKey}`);
  return null;
}

function readProviders(ctx: Ctx, value: unknown): ProvidersConfig {
  const p = ['providers'];
  const m =
    mapping(ctx, p, value, ['file', 'aws-ec2'] as const, { aws: 'use "aws-ec2"', ec2: 'use "aws-ec2"' }) ??
    {};
  return {
    file: readFileProvider(ctx, [...p, 'file'], m.file),
    'aws-ec2': readEc2Provider(ctx, [...p, 'aws-ec2'], m['aws-ec2']),
  };
}

function readFileProvider(ctx: Ctx, path: Path, value: unknown): ProvidersConfig['file'] {
  const m = mapping(ctx, path, value, ['root'] as const);
  if (!m) return null;
  requireKey(ctx, [...path, 'root'], m.root);
  const root = fsPath(ctx, [...path, 'root'], m.root);
  if (root !== undefined && dirname(root) === root) {
    complain(
      ctx,
      [...path, 'root'],
      'must not be the filesystem root; name the folder that holds the managed files',
    );
  }
  return { root: root ?? '' };
}

function readEc2Provider(ctx: Ctx, path: Path, value: unknown): ProvidersConfig['aws-ec2'] {
  const m = mapping(ctx, path, value, ['region', 'endpoint'] as const, {
    accessKeyId: 'credentials come from the standard AWS environment, profile or instance role',
    secretAccessKey: 'credentials come from the standard AWS environment, profile or instance role',
  });
  if (!m) return null;
  requireKey(ctx, [...path, 'region'], m.region);
  const region = str(ctx, [...path, 'region'], m.region);
  if (region !== undefined && !/^[a-z]{2}(-[a-z0-9]+)+-\d+$/.test(region)) {
    complain(ctx, [...path, 'region'], `"${region}" is not an AWS region name (e.g. eu-west-1)`);
  }
  const endpointRaw = str(ctx, [...path, 'endpoint'], m.endpoint);
  const endpoint =
    endpointRaw === undefined ? null : (checkHttpUrl(ctx, [...path, 'endpoint'], endpointRaw) ?? null);
  return { region: region ?? '', endpoint };
}

/** An http(s) URL (for alerts and endpoints); never echoed. */
function checkHttpUrl(ctx: Ctx, path: Path, s: string): string | undefined {
  if (!/^https?:\/\//i.test(s.trim())) {
    complain(ctx, path, 'must be an http:// or https:// URL');
    return undefined;
  }
  return httpUrl(ctx, path, s.trim());
}

function readReconcile(ctx: Ctx, value: unknown): ReconcileConfig {
  const p = ['reconcile'];
  const m = mapping(ctx, p, value, ['interval', 'mode'] as const, { dryRun: 'use "mode: observe"' }) ?? {};
  return {
    intervalMs:
      duration(ctx, [...p, 'interval'], m.interval, MIN_INTERVAL_MS) ?? DEFAULTS.reconcile.intervalMs,
    mode: oneOf(ctx, [...p, 'mode'], m.mode, MODES) ?? DEFAULTS.reconcile.mode,
  };
}

const GUARDRAIL_KEYS = [
  'maxActionsPerCycle',
  'massDrift',
  'rateLimit',
  'backoff',
  'nonConvergence',
  'soak',
  'fieldPolicy',
] as const;

function readGuardrails(ctx: Ctx, value: unknown): GuardrailsConfig {
  const p = ['guardrails'];
  const d = DEFAULTS.guardrails;
  const m = mapping(ctx, p, value, GUARDRAIL_KEYS) ?? {};
  return {
    maxActionsPerCycle:
      int(ctx, [...p, 'maxActionsPerCycle'], m.maxActionsPerCycle, 0) ?? d.maxActionsPerCycle,
    massDrift: readMassDrift(ctx, [...p, 'massDrift'], m.massDrift),
    rateLimit: readRateLimit(ctx, [...p, 'rateLimit'], m.rateLimit),
    backoff: readBackoff(ctx, [...p, 'backoff'], m.backoff),
    nonConvergence: {
      alertAfterCycles:
        readOneKey(ctx, [...p, 'nonConvergence'], m.nonConvergence, 'alertAfterCycles', 1) ??
        d.nonConvergence.alertAfterCycles,
    },
    soak: {
      observeCycles: readOneKey(ctx, [...p, 'soak'], m.soak, 'observeCycles', 0) ?? d.soak.observeCycles,
    },
    fieldPolicy: readFieldPolicy(ctx, [...p, 'fieldPolicy'], m.fieldPolicy),
  };
}

/** An integer >= min held by a mapping's only key (`nonConvergence.alertAfterCycles`, `soak.observeCycles`). */
function readOneKey(ctx: Ctx, path: Path, value: unknown, key: string, min: number): number | undefined {
  const m = mapping(ctx, path, value, [key]);
  return int(ctx, [...path, key], m?.[key], min);
}

function readMassDrift(ctx: Ctx, path: Path, value: unknown): GuardrailsConfig['massDrift'] {
  const d = DEFAULTS.guardrails.massDrift;
  const m = mapping(ctx, path, value, ['maxDrifted', 'maxDriftedPercent', 'minManaged'] as const) ?? {};
  return {
    maxDrifted: int(ctx, [...path, 'maxDrifted'], m.maxDrifted, 0) ?? d.maxDrifted,
    maxDriftedPercent:
      num(ctx, [...path, 'maxDriftedPercent'], m.maxDriftedPercent, { above: 0, max: 100 }) ??
      d.maxDriftedPercent,
    minManaged: int(ctx, [...path, 'minManaged'], m.minManaged, 0) ?? d.minManaged,
  };
}

function readRateLimit(ctx: Ctx, path: Path, value: unknown): GuardrailsConfig['rateLimit'] {
  const d = DEFAULTS.guardrails.rateLimit;
  const m = mapping(ctx, path, value, ['actionsPerMinute', 'burst'] as const) ?? {};
  return {
    actionsPerMinute:
      num(ctx, [...path, 'actionsPerMinute'], m.actionsPerMinute, { above: 0 }) ?? d.actionsPerMinute,
    burst: int(ctx, [...path, 'burst'], m.burst, 1) ?? d.burst,
  };
}

function readBackoff(ctx: Ctx, path: Path, value: unknown): GuardrailsConfig['backoff'] {
  const d = DEFAULTS.guardrails.backoff;
  const m = mapping(ctx, path, value, ['base', 'factor', 'max', 'jitter'] as const) ?? {};
  const baseMs = duration(ctx, [...path, 'base'], m.base, 1);
  const maxMs = duration(ctx, [...path, 'max'], m.max, 1);
  const result = {
    baseMs: baseMs ?? d.baseMs,
    factor: num(ctx, [...path, 'factor'], m.factor, { min: 1 }) ?? d.factor,
    maxMs: maxMs ?? d.maxMs,
    jitter: num(ctx, [...path, 'jitter'], m.jitter, { min: 0, max: 1 }) ?? d.jitter,
  };
  if ((baseMs !== undefined || maxMs !== undefined) && result.maxMs < result.baseMs) {
    const at = maxMs !== undefined ? [...path, 'max'] : [...path, 'base'];
    complain(
      ctx,
      at,
      `max (${formatDuration(result.maxMs)}) must not be below base (${formatDuration(result.baseMs)})`,
    );
  }
  return result;
}

const KIND_NAME = /^[A-Z][A-Za-z0-9]*$/;

/** kind → `/spec/…` pointer → revert | report, built as fresh plain records. */
function readFieldPolicy(ctx: Ctx, path: Path, value: unknown): GuardrailsConfig['fieldPolicy'] {
  const kinds = openMapping(ctx, path, value);
  const out: Array<[string, Record<string, FieldPolicy>]> = [];
  for (const [kind, fields] of kinds) {
    const kindPath = [...path, kind];
    if (!KIND_NAME.test(kind)) complain(ctx, kindPath, 'is not a resource kind (e.g. Ec2Instance, File)');
    const entries: Array<[string, FieldPolicy]> = [];
    for (const [pointer, policy] of openMapping(ctx, kindPath, fields)) {
      const pp = [...kindPath, pointer];
      const bad = pointerProblem(pointer);
      if (bad !== undefined) complain(ctx, pp, bad);
      const chosen = oneOf(ctx, pp, policy, FIELD_POLICIES);
      if (bad === undefined && chosen !== undefined) entries.push([pointer, chosen]);
    }
    out.push([kind, Object.fromEntries(entries)]);
  }
  return Object.fromEntries(out);
}

/** Entries of a mapping with user-chosen keys, forbidden keys reported and skipped. */
function openMapping(ctx: Ctx, path: Path, value: unknown): Array<[string, unknown]> {
  if (isAbsent(value)) return [];
  if (!isMapping(value)) {
    complain(ctx, path, `expected a mapping, got ${describe(value)}`);
    return [];
  }
  return Object.entries(value).filter(([k]) => {
    if (!FORBIDDEN_KEYS.has(k)) return true;
    report(ctx, [...path, k], `key "${showPath([...path, k])}" is not allowed`);
    return false;
  });
}

/** Why a field-policy key is not a JSON pointer into spec, or undefined when it is one. */
function pointerProblem(pointer: string): string | undefined {
  if (!pointer.startsWith('/spec/') || pointer.length === '/spec/'.length) {
    return 'must be a JSON pointer into the spec, e.g. /spec/instanceType';
  }
  const segments = pointer.slice(1).split('/');
  if (segments.some((s) => s === '')) return 'must not contain empty segments (//) or end with /';
  if (segments.some((s) => /~(?![01])/.test(s)))
    return 'has an invalid escape: in a JSON pointer "~" is written ~0 and "/" is ~1';
  if (segments.some((s) => FORBIDDEN_KEYS.has(s))) return 'must not name __proto__, constructor or prototype';
  return undefined;
}

function readAdmin(ctx: Ctx, value: unknown, stateDir: string): AdminConfig {
  const p = ['admin'];
  const hints = {
    token: 'secrets are never written inline: use tokenFile',
    webhookSecret: 'secrets are never written inline: use webhookSecretFile',
    port: 'use listen: "host:port"',
    host: 'use listen: "host:port"',
  };
  const m = mapping(ctx, p, value, ['listen', 'tokenFile', 'webhookSecretFile'] as const, hints) ?? {};
  return {
    listen: readListen(ctx, [...p, 'listen'], m.listen) ?? DEFAULTS.admin.listen,
    tokenFile:
      fsPath(ctx, [...p, 'tokenFile'], m.tokenFile) ?? resolve(stateDir, DEFAULTS.admin.tokenFileName),
    webhookSecretFile:
      fsPath(ctx, [...p, 'webhookSecretFile'], m.webhookSecretFile) ?? DEFAULTS.admin.webhookSecretFile,
  };
}

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** `host:port` or `[v6]:port`; port 0 lets the OS choose. */
function readListen(ctx: Ctx, path: Path, v: unknown): AdminConfig['listen'] | undefined {
  if (typeof v === 'number') {
    complain(ctx, path, `expected "host:port", got a bare port (write "127.0.0.1:${v}")`);
    return undefined;
  }
  const s = str(ctx, path, v)?.trim();
  if (s === undefined) return undefined;
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:[\]\s]+):(\d+)$/.exec(s);
  const host = m?.[1];
  const port = m?.[2] === undefined ? Number.NaN : Number(m[2]);
  const bracketed = s.startsWith('[');
  if (
    host === undefined ||
    (bracketed && !isIPv6(host)) ||
    (!bracketed && isIP(host) === 0 && !HOSTNAME.test(host))
  ) {
    complain(
      ctx,
      path,
      `expected "host:port" or "[ipv6]:port" (e.g. 127.0.0.1:7420 or [::1]:7420), got "${s}"`,
    );
    return undefined;
  }
  if (!Number.isInteger(port) || port > 65535) {
    complain(ctx, path, `port must be between 0 and 65535, got ${m?.[2] ?? ''}`);
    return undefined;
  }
  return { host, port };
}

const ALERT_KEYS = ['url', 'secretFile', 'secretEnv', 'events', 'timeout'] as const;

function readAlerts(ctx: Ctx, value: unknown): Draft['alerts'] {
  const items = list(ctx, ['alerts'], value) ?? [];
  return items.map((item, i) => readAlert(ctx, ['alerts', i], item));
}

function readAlert(ctx: Ctx, path: Path, value: unknown): Draft['alerts'][number] {
  const hints = {
    secret: 'secrets are never written inline: use secretFile or secretEnv',
    event: 'use "events", a list',
  };
  if (isAbsent(value)) complain(ctx, path, 'expected a mapping with at least url');
  const m = mapping(ctx, path, value, ALERT_KEYS, hints) ?? {};
  if (isMapping(value)) requireKey(ctx, [...path, 'url'], m.url);
  const raw = str(ctx, [...path, 'url'], m.url);
  return {
    url: raw === undefined ? '' : (checkHttpUrl(ctx, [...path, 'url'], raw) ?? ''),
    secret: secretRef(ctx, path, m.secretFile, m.secretEnv, ['secretFile', 'secretEnv'], false),
    events: readEvents(ctx, [...path, 'events'], m.events),
    timeoutMs: duration(ctx, [...path, 'timeout'], m.timeout, 1) ?? DEFAULTS.alerts.timeoutMs,
  };
}

/** A non-empty list of known event names, de-duplicated; absent means every event. */
function readEvents(ctx: Ctx, path: Path, value: unknown): readonly string[] {
  const items = list(ctx, path, value);
  if (items === undefined) return DEFAULTS.alerts.events;
  if (items.length === 0) complain(ctx, path, 'must not be empty (leave it out to receive every event)');
  const events = new Set<string>();
  items.forEach((item, i) => {
    const name = str(ctx, [...path, i], item);
    if (name === undefined) return;
    if (ALERT_EVENTS.includes(name)) events.add(name);
    else {
      const near = suggest(name, ALERT_EVENTS);
      const mean = near === undefined ? '' : `did you mean "${near}"? `;
      complain(ctx, [...path, i], `unknown event "${name}" (${mean}valid: ${ALERT_EVENTS.join(', ')})`);
    }
  });
  return [...events];
}

function readState(ctx: Ctx, value: unknown): Config['state'] {
  const m = mapping(ctx, ['state'], value, ['dir'] as const) ?? {};
  return { dir: fsPath(ctx, ['state', 'dir'], m.dir) ?? resolve(ctx.baseDir, DEFAULTS.state.dir) };
}

function readLog(ctx: Ctx, value: unknown): Config['log'] {
  const m = mapping(ctx, ['log'], value, ['level'] as const) ?? {};
  return { level: oneOf(ctx, ['log', 'level'], m.level, LOG_LEVELS) ?? DEFAULTS.log.level };
}

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

function readSecretFile(path: string): string {
  return readFileSync(path, 'utf8');
}

/** Reads every referenced secret; all failures are thrown together as SECRET_READ. */
function resolveSecrets(
  ctx: Ctx,
  draft: Draft,
  env: NodeJS.ProcessEnv,
  readSecret: (path: string) => string,
): Omit<Config, 'file'> {
  const failures: SourceProblem[] = [];
  const read = (ref: SecretRef): string => {
    const result = readOneSecret(ref, env, readSecret);
    if (typeof result === 'string') return result;
    const pos = locate(ctx, ref.path);
    failures.push({
      file: ctx.file,
      line: pos.line,
      col: pos.col,
      message: `${showPath(ref.path)}: ${result.error}`,
    });
    return '';
  };
  const { auth } = draft.source;
  const config: Omit<Config, 'file'> = {
    ...draft,
    source: {
      ...draft.source,
      auth: auth ? { username: auth.username, password: read(auth.password) } : null,
    },
    alerts: draft.alerts.map((a) => ({ ...a, secret: a.secret ? read(a.secret) : null })),
  };
  if (failures.length > 0) {
    throw new StewardError('SECRET_READ', failures.map(formatProblem).join('\n'), { problems: failures });
  }
  return config;
}

/** The secret's value, or why it could not be read (naming the file or variable, never the content). */
function readOneSecret(
  ref: SecretRef,
  env: NodeJS.ProcessEnv,
  readSecret: (path: string) => string,
): string | { error: string } {
  if (ref.from === 'env') {
    const value = Object.hasOwn(env, ref.name) ? env[ref.name] : undefined;
    if (value === undefined) return { error: `environment variable ${ref.name} is not set` };
    if (value === '') return { error: `environment variable ${ref.name} is empty` };
    return value;
  }
  let text: string;
  try {
    text = readSecret(ref.name);
  } catch (e) {
    return { error: `cannot read secret file "${ref.name}": ${ioReason(e)}` };
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') return { error: `secret file "${ref.name}" is empty` };
  return value;
}

/** A short reason for an I/O failure: the errno code when there is one (ENOENT, EACCES, …). */
function ioReason(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  const texts: Record<string, string> = {
    ENOENT: 'no such file',
    EACCES: 'permission denied',
    EISDIR: 'is a directory',
    ENOTDIR: 'a parent is not a directory',
  };
  if (typeof code === 'string') return texts[code] ? `${code} (${texts[code]})` : code;
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------------------

/** Freezes an object graph in place (objects and arrays) and returns it. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
