/**
 * The agent config (`steward.yaml`), validated once at start-up and read-only
 * afterwards. The shape, the defaults and the validation are declared once,
 * as a schema, in config/schema.ts; this file is the thin layer around it:
 *
 * - Every problem ajv finds (an unknown key, a wrong type, an out-of-range
 *   value, a missing required key) becomes `file:line:col: message`, placed
 *   at the key concerned; all are thrown together as one CONFIG_INVALID.
 * - Unknown keys get a did-you-mean, or the schema's hint for keys that
 *   people commonly write but steward does not take (inline secrets, `*Ms`,
 *   `source.branch`, …).
 * - `key:` with no value means the key is absent; `__proto__`, `constructor`
 *   and `prototype` are rejected before anything else reads the value.
 * - Secrets are only ever read from files or environment variables, after the
 *   rest of the config is valid; their content never appears in a message.
 * - Relative paths are resolved against the directory of the config file.
 * - The result is a deep-frozen {@link Config}.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDuration } from '../core/duration.js';
import { type SourceProblem, StewardError, formatProblem } from '../core/errors.js';
import {
  type Checked,
  type Checker,
  compileSchema,
  defaultsOf,
  precompiledChecker,
  type Issue,
  showPath,
} from '../core/schema.js';
import { FORBIDDEN_KEYS, type PathSegment, type YamlDocument, parseYaml } from '../core/yaml.js';
import { checkBackoff, type GuardrailConfig, guardrailConfig } from '../policies/guardrail-config.js';
import type { ChangeWindow } from '../policies/windows.js';
import { parseAllowedSigners } from './source/verify/allowed-signers.js';
import { checkProviders, type ProvidersConfig, providersConfig } from '../providers/config.js';
import { ALERT_EVENT_NAMES } from './alert-events.js';
import {
  CONFIG_FORMATS,
  ConfigSchema,
  type ConfigInput,
  DEFAULT_COMMAND_TIMEOUT,
  parseListen,
  urlScheme,
} from './config/schema.js';
import type { HealthCheckSpec } from './health/types.js';

export type { ProvidersConfig };
export type { ConfigInput };

/** Alert events a receiver can subscribe to (SPEC §8): defined once, in alert-events.ts. */
export const ALERT_EVENTS: readonly string[] = ALERT_EVENT_NAMES;

export type LogLevel = ConfigInput['log']['level'];
export type LogFormat = ConfigInput['log']['format'];

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
  /** Which Git engine reads the source (`auto`: native git when usable, else isomorphic-git). */
  readonly engine: 'auto' | 'git' | 'isomorphic';
  readonly auth: SourceAuth | null;
  /** Signed desired state (SPEC §10); null: revisions are not verified ("unverified"). */
  readonly verify: VerifyConfig | null;
}

/** A trust file as read at start: its absolute path and text (public keys; not secret, never logged whole). */
export interface TrustFile {
  readonly file: string;
  readonly text: string;
}

export interface VerifyConfig {
  readonly mode: 'strict' | 'head';
  readonly allowRewrite: boolean;
  /** Armored OpenPGP public key files. */
  readonly openpgp: readonly TrustFile[];
  /** git's allowed-signers file (already checked: it parses without problems). */
  readonly ssh: TrustFile | null;
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

/** The config as the agent uses it: durations in milliseconds, absolute paths, secrets read. */
export interface Config {
  /** Absolute path of the config file (`<embedded>` if none). */
  readonly file: string;
  readonly source: SourceConfig;
  readonly providers: ProvidersConfig;
  readonly reconcile: { readonly intervalMs: number; readonly mode: ConfigInput['reconcile']['mode'] };
  readonly guardrails: GuardrailConfig;
  readonly admin: AdminConfig;
  readonly alerts: readonly AlertConfig[];
  /** Change windows (SPEC §12): durations in milliseconds; none means always open. */
  readonly windows: readonly ChangeWindow[];
  readonly state: StateConfig;
  /** Who this agent is in the fleet (SPEC §11). */
  readonly agent: { readonly id: string; readonly labels: Readonly<Record<string, string>> };
  readonly fleet: FleetConfig;
  readonly log: { readonly level: LogLevel; readonly format: LogFormat };
  /** Health checks (SPEC §11), in the order written; agent config only, never Git. */
  readonly health: readonly HealthCheckSpec[];
}

export interface PostgresConfig {
  /** As written: never carries a password (the schema rejects one). */
  readonly url: string;
  /** Read from `passwordFile` (one trailing newline trimmed); null without one. Never log it. */
  readonly password: string | null;
  readonly poolSize: number;
  readonly connectTimeoutMs: number;
}

export interface StateConfig {
  readonly dir: string;
  readonly backend: 'files' | 'postgres';
  /** Set exactly when `backend` is `postgres`. */
  readonly postgres: PostgresConfig | null;
}

/** fleet.shards: shared (EC2) resources split into shards held under leases (docs/fleet-shards.md). */
export interface ShardsConfig {
  readonly count: number;
  readonly leaseTtlMs: number;
}

export interface FleetConfig {
  /** Cumulative wave sizes as written (`1`, `"30%"`), and the bake time. */
  readonly rollout: { readonly waves: ReadonlyArray<number | string>; readonly bakeMs: number } | null;
  readonly massDrift: { readonly maxDriftedPercent: number } | null;
  readonly shards: ShardsConfig | null;
}

export interface ParseOptions {
  /** Where `passwordEnv` / `secretEnv` are looked up; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Reads a secret file; defaults to reading it as UTF-8. */
  readSecret?: (path: string) => string;
}

/** The name given to parseConfig for a config that has no file; relative paths then resolve against the cwd. */
export const EMBEDDED = '<embedded>';

/** Shortest fleet.shards.leaseTtl: renews run every third of it, over a network. */
const MIN_LEASE_TTL_MS = 1_000;

/** The admin token file's name inside `state.dir` when `admin.tokenFile` is not set. */
const TOKEN_FILE_NAME = 'admin-token';

/** Compiled on first use: commands that never read a config (`--help`) do not pay for it. */
let checker: Checker<typeof ConfigSchema> | undefined;

/**
 * The build's precompiled validator (scripts/bundle-cli.mjs writes ajv's standalone code for ConfigSchema
 * next to this module), when it was made from this very schema: saves compiling it (≈ 100 ms of every
 * command that reads the config). Absent (sources run through tsx, or a build without it): compiled here.
 */
async function usePrecompiled(): Promise<void> {
  checker ??= await precompiledChecker(PRECOMPILED, ConfigSchema, CONFIG_FORMATS);
}
/** Beside this module: dist/agent/config/, and dist/bundle/config/ for the bundle's chunk. */
const PRECOMPILED = new URL('./config/schema.compiled.js', import.meta.url);
function check(data: unknown): Checked<ConfigInput> {
  checker ??= compileSchema(ConfigSchema, CONFIG_FORMATS);
  return checker(data);
}

/**
 * Every default as written in steward.yaml, read off the schema (only
 * `source.url` has none); deep-frozen.
 */
export const DEFAULTS = deepFreeze(defaultsOf(ConfigSchema)) as Omit<ConfigInput, 'source'> & {
  source: Omit<ConfigInput['source'], 'url'>;
};

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

  const parsed = parseYaml(text, file);
  if (!parsed.ok) throw invalid([parsed.problem]);
  const [doc, second] = parsed.docs;
  const at = (issues: readonly Issue[]): SourceProblem[] => issues.map((i) => problemAt(file, doc, i));
  const problems: SourceProblem[] = [];
  if (second) {
    const message = `the config must be a single YAML document; found ${parsed.docs.length}`;
    problems.push({ file, ...second.start, message });
  }
  if (doc?.value === undefined || doc.value === null) {
    throw invalid([
      ...problems,
      ...at([{ path: [], message: 'the config is empty: at least source.url is required' }]),
    ]);
  }

  const issues: Issue[] = [];
  const input = prepare(doc.value, [], issues);
  const written = structuredClone(input);
  const result = check(input);
  if (!result.ok) issues.push(...result.issues);
  // What the schema cannot say, checked on every slice that is otherwise valid.
  const clean = (...slice: PathSegment[]): boolean =>
    !issues.some((i) => slice.every((seg, n) => n >= i.path.length || i.path[n] === seg));
  const value = input as ConfigInput;
  const abs = (p: string): string => resolve(baseDir, p);
  if (clean('guardrails', 'backoff')) {
    const w = (written as { guardrails?: { backoff?: Record<string, unknown> } }).guardrails?.backoff;
    issues.push(...checkBackoff(value.guardrails.backoff, w ?? {}, ['guardrails', 'backoff']));
  }
  if (clean('providers', 'file')) {
    const file = providersConfig({ file: value.providers.file }, abs); // only the slice known to be valid
    issues.push(...checkProviders(file, ['providers']));
  }
  if (clean('fleet', 'shards') && value.fleet.shards) {
    if (!value.state.postgres)
      issues.push({
        path: ['fleet', 'shards'],
        message:
          'fleet.shards: the shard leases live in PostgreSQL; set state.postgres.url (every agent sharing the resources uses the same database)',
      });
    if (parseDuration(value.fleet.shards.leaseTtl) < MIN_LEASE_TTL_MS)
      issues.push({
        path: ['fleet', 'shards', 'leaseTtl'],
        message: `fleet.shards.leaseTtl: at least ${MIN_LEASE_TTL_MS / 1000}s (a renew runs every third of it)`,
      });
  }
  if (clean('fleet', 'rollout') && value.fleet.rollout)
    issues.push(...checkWaves(value.fleet.rollout.waves, ['fleet', 'rollout', 'waves']));
  if (clean('state') && value.state.backend === 'postgres' && !value.state.postgres)
    issues.push({
      path: ['state', 'backend'],
      message:
        'state.backend: postgres needs state.postgres with at least its url (postgres://user@host/database)',
    });
  if (clean('state') && value.state.backend !== 'postgres' && value.state.postgres && !value.fleet.shards)
    issues.push({
      path: ['state', 'postgres'],
      message:
        'state.postgres: only applies with state.backend: postgres or fleet.shards (the shard leases); set one or remove it',
    });
  if (clean('source') && value.source.auth && sourceUrl(value.source.url, abs).kind === 'local') {
    issues.push({
      path: ['source', 'auth'],
      message: 'source.auth: only applies to http(s) sources; remove it for a local repository',
    });
  }
  if (Array.isArray(value.health)) {
    const cleanChecks = value.health.map((_, i) => clean('health', i));
    issues.push(...checkHealth(value.health, cleanChecks));
  }
  problems.push(...at(issues));
  if (problems.length > 0 || !result.ok) throw invalid(problems);

  const verify = readVerify(file, doc, value.source.verify, abs, opts.readSecret ?? readSecretFile);
  const config = resolveSecrets(
    file,
    doc,
    toDraft(value, abs, verify),
    opts.env ?? process.env,
    opts.readSecret ?? readSecretFile,
  );
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
  await usePrecompiled();
  return parseConfig(text, path, opts.env ? { env: opts.env } : {});
}

function invalid(problems: SourceProblem[]): StewardError {
  const sorted = [...problems].sort((a, b) => a.line - b.line || a.col - b.col);
  return new StewardError('CONFIG_INVALID', sorted.map(formatProblem).join('\n'), { problems: sorted });
}

// ---------------------------------------------------------------------------
// The thin layer: positions, empty values, reserved keys
// ---------------------------------------------------------------------------

/** An issue placed where its path is written (its key, or the nearest written ancestor). */
function problemAt(file: string, doc: YamlDocument | undefined, issue: Issue): SourceProblem {
  return { file, ...locate(doc, issue.path), message: issue.message };
}

/** Position of a path; an empty node (e.g. a bare `-` item) has no offset of its own, so its parent's is used. */
function locate(doc: YamlDocument | undefined, path: readonly PathSegment[]): { line: number; col: number } {
  for (let n = path.length; doc && n >= 0; n--) {
    const pos = doc.locate(path.slice(0, n));
    if (pos.line >= 1 && pos.col >= 1) return pos;
  }
  return { line: 1, col: 1 };
}

/**
 * A fresh copy of the parsed YAML for the schema to check and fill: a key
 * written with no value (`key:`) is left out, so its default applies; a
 * reserved key is reported and left out, so nothing ever assigns it.
 */
function prepare(value: unknown, path: readonly PathSegment[], issues: Issue[]): unknown {
  if (Array.isArray(value)) return value.map((v, i) => prepare(v, [...path, i], issues));
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const p = [...path, k];
    if (FORBIDDEN_KEYS.has(k)) issues.push({ path: p, message: `key "${showPath(p)}" is not allowed` });
    else if (v !== null) out[k] = prepare(v, p, issues);
  }
  return out;
}

// ---------------------------------------------------------------------------
// The typed step from what is written to what the agent uses
// ---------------------------------------------------------------------------

/** Where a secret comes from; read only once the whole config is valid. */
interface SecretRef {
  readonly path: readonly PathSegment[];
  readonly from: 'file' | 'env';
  /** Absolute file path or environment variable name. */
  readonly name: string;
}

/** The config before secrets are read: the same shape with references in place of secret values. */
interface Draft extends Omit<Config, 'file' | 'source' | 'alerts' | 'state'> {
  readonly state: Omit<StateConfig, 'postgres'> & {
    readonly postgres: (Omit<PostgresConfig, 'password'> & { readonly password: SecretRef | null }) | null;
  };
  readonly source: Omit<SourceConfig, 'auth'> & {
    readonly auth: { readonly username: string; readonly password: SecretRef } | null;
  };
  readonly alerts: ReadonlyArray<Omit<AlertConfig, 'secret'> & { readonly secret: SecretRef | null }>;
}

function toDraft(c: ConfigInput, abs: (p: string) => string, verify: VerifyConfig | null): Draft {
  const secret = (
    parent: readonly PathSegment[],
    key: string,
    file?: string,
    env?: string,
  ): SecretRef | null => {
    if (file !== undefined) return { path: [...parent, `${key}File`], from: 'file', name: abs(file) };
    if (env !== undefined) return { path: [...parent, `${key}Env`], from: 'env', name: env };
    return null;
  };
  const { auth } = c.source;
  const stateDir = abs(c.state.dir);
  const listen = parseListen(c.admin.listen);
  return {
    source: {
      ...sourceUrl(c.source.url, abs),
      ref: c.source.ref,
      path: normaliseRepoPath(c.source.path),
      intervalMs: parseDuration(c.source.interval),
      engine: c.source.engine,
      verify,
      auth: auth
        ? {
            username: auth.username,
            password: secret(['source', 'auth'], 'password', auth.passwordFile, auth.passwordEnv)!,
          }
        : null,
    },
    providers: providersConfig(c.providers, abs),
    reconcile: { intervalMs: parseDuration(c.reconcile.interval), mode: c.reconcile.mode },
    guardrails: guardrailConfig(c.guardrails),
    admin: {
      listen: typeof listen === 'string' ? { host: '', port: 0 } : listen,
      tokenFile:
        c.admin.tokenFile === undefined ? resolve(stateDir, TOKEN_FILE_NAME) : abs(c.admin.tokenFile),
      webhookSecretFile: c.admin.webhookSecretFile === undefined ? null : abs(c.admin.webhookSecretFile),
    },
    alerts: c.alerts.map((a, i) => ({
      url: a.url.trim(),
      secret: secret(['alerts', i], 'secret', a.secretFile, a.secretEnv),
      events: [...new Set(a.events)],
      timeoutMs: parseDuration(a.timeout),
    })),
    windows: c.windows.map((w) => ({
      kind: w.kind,
      schedule: w.schedule.trim(),
      durationMs: parseDuration(w.duration),
      timezone: w.timezone,
    })),
    state: {
      dir: stateDir,
      backend: c.state.backend,
      postgres:
        c.state.postgres && (c.state.backend === 'postgres' || c.fleet.shards)
          ? {
              url: c.state.postgres.url.trim(),
              password: secret(['state', 'postgres'], 'password', c.state.postgres.passwordFile),
              poolSize: c.state.postgres.poolSize,
              connectTimeoutMs: parseDuration(c.state.postgres.connectTimeout),
            }
          : null,
    },
    agent: { id: c.agent.id ?? hostname(), labels: { ...c.agent.labels } },
    fleet: {
      rollout: c.fleet.rollout
        ? { waves: [...c.fleet.rollout.waves], bakeMs: parseDuration(c.fleet.rollout.bake) }
        : null,
      massDrift: c.fleet.massDrift ? { maxDriftedPercent: c.fleet.massDrift.maxDriftedPercent } : null,
      shards: c.fleet.shards
        ? { count: c.fleet.shards.count, leaseTtlMs: parseDuration(c.fleet.shards.leaseTtl) }
        : null,
    },
    log: { level: c.log.level, format: c.log.format },
    health: c.health.map((h) => healthCheck(h, abs, baseDirOf(abs))),
  };
}

type HealthInput = ConfigInput['health'][number];

/**
 * What the schema cannot say about `health:`: names are unique (a metric label
 * and an alert slot each), `timeout` at the check's level belongs to a command
 * (http and prometheus carry theirs inside), and a Prometheus url is the
 * server's base URL. (A timeout longer than the interval is fine: a run is
 * never doubled, so a slow check just runs back to back.)
 */
function checkHealth(checks: readonly HealthInput[], clean: readonly boolean[]): Issue[] {
  const issues: Issue[] = [];
  const seen = new Map<string, number>();
  for (const [i, h] of checks.entries()) {
    if (!clean[i]) continue; // its own problems are reported already
    const first = seen.get(h.name);
    if (first === undefined) seen.set(h.name, i);
    else
      issues.push({
        path: ['health', i, 'name'],
        message: `health[${i}].name: "${h.name}" is already the name of health[${first}]; check names must be unique`,
      });
    if (h.timeout !== undefined && h.command === undefined) {
      const inside = h.http ? 'http' : 'prometheus';
      issues.push({
        path: ['health', i, 'timeout'],
        message: `health[${i}].timeout: only a command check takes timeout here; write ${inside}.timeout`,
      });
      continue;
    }
    if (h.prometheus) {
      const url = new URL(h.prometheus.url.trim());
      if (url.search !== '' || url.hash !== '')
        issues.push({
          path: ['health', i, 'prometheus', 'url'],
          message: `health[${i}].prometheus.url: must be the server's base URL (e.g. http://prometheus:9090), without a query; the query goes in prometheus.query`,
        });
    }
  }
  return issues;
}

/** The directory relative paths are resolved against. */
const baseDirOf = (abs: (p: string) => string): string => abs('.');

/** A validated `health:` entry as the runner takes it. A relative command path is relative to the config file. */
function healthCheck(h: HealthInput, abs: (p: string) => string, baseDir: string): HealthCheckSpec {
  const base = { name: h.name, intervalMs: parseDuration(h.interval) };
  if (h.http)
    return {
      ...base,
      kind: 'http',
      timeoutMs: parseDuration(h.http.timeout),
      url: h.http.url.trim(),
      expectStatus: h.http.expectStatus,
    };
  if (h.prometheus)
    return {
      ...base,
      kind: 'prometheus',
      timeoutMs: parseDuration(h.prometheus.timeout),
      url: h.prometheus.url.trim(),
      query: h.prometheus.query,
    };
  const [program = '', ...args] = h.command ?? [];
  return {
    ...base,
    kind: 'command',
    timeoutMs: parseDuration(h.timeout ?? DEFAULT_COMMAND_TIMEOUT),
    // `./check.sh` and `bin/check` are files next to the config; a bare name is looked up on the PATH
    argv: [program.includes('/') ? abs(program) : program, ...args],
    cwd: baseDir,
  };
}

/** A wave's size as a share of the fleet (a count is compared as it is): cumulative, so each must grow. */
function checkWaves(waves: ReadonlyArray<number | string>, path: readonly PathSegment[]): Issue[] {
  const issues: Issue[] = [];
  const last = waves[waves.length - 1];
  if (last !== '100%')
    issues.push({
      path: [...path, waves.length - 1],
      message: `${showPath(path)}: the last wave must be "100%" (wave sizes are cumulative; without it some agents never get a revision)`,
    });
  const pct = (w: number | string) => (typeof w === 'string' ? Number.parseFloat(w) : null);
  for (let i = 1; i < waves.length; i++) {
    const a = pct(waves[i - 1]!);
    const b = pct(waves[i]!);
    const shrinks =
      (a !== null && b !== null && b <= a) ||
      (a === null && b === null && (waves[i] as number) <= (waves[i - 1] as number));
    if (shrinks)
      issues.push({
        path: [...path, i],
        message: `${showPath([...path, i])}: wave sizes are cumulative, so each must be larger than the one before`,
      });
  }
  return issues;
}

/** source.url as the fetcher takes it: an http(s) URL as written, or the absolute path of a local repository. */
function sourceUrl(raw: string, abs: (p: string) => string): { url: string; kind: 'http' | 'local' } {
  const s = raw.trim();
  const scheme = urlScheme(s);
  if (scheme === 'http' || scheme === 'https') return { url: s, kind: 'http' };
  return { url: scheme === 'file' ? fileURLToPath(s) : abs(s), kind: 'local' };
}

/** `./fleet/` → `fleet`; `.`, `./` or `""` → `.`. */
function normaliseRepoPath(s: string): string {
  const segments = s.split('/').filter((seg) => seg !== '' && seg !== '.');
  return segments.length === 0 ? '.' : segments.join('/');
}

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

function readSecretFile(path: string): string {
  return readFileSync(path, 'utf8');
}

/**
 * Reads source.verify's trust files (relative to the config) at start. A file
 * that cannot be read, an allowed-signers line that does not parse (its own
 * file:line:col) or a key file that is not an armored public key: CONFIG_INVALID,
 * every problem at once. Fail closed: a policy that cannot be read never means
 * "verify nothing".
 */
function readVerify(
  file: string,
  doc: YamlDocument | undefined,
  v: ConfigInput['source']['verify'],
  abs: (p: string) => string,
  readText: (path: string) => string,
): VerifyConfig | null {
  if (!v) return null;
  const problems: SourceProblem[] = [];
  const read = (path: readonly PathSegment[], name: string): TrustFile => {
    const full = abs(name);
    try {
      return { file: full, text: readText(full) };
    } catch (e) {
      const pos = locate(doc, path);
      problems.push({
        file,
        ...pos,
        message: `${showPath(path)}: cannot read "${full}": ${ioReason(e)}`,
      });
      return { file: full, text: '' };
    }
  };
  const openpgp = (v.openpgp ?? []).map((k, i) => read(['source', 'verify', 'openpgp', i], k));
  for (const [i, k] of openpgp.entries()) {
    if (k.text === '' && problems.length > 0) continue;
    const pos = locate(doc, ['source', 'verify', 'openpgp', i]);
    if (/-----BEGIN PGP PRIVATE KEY BLOCK-----/.test(k.text))
      problems.push({
        file,
        ...pos,
        message: `source.verify.openpgp: "${k.file}" holds a PRIVATE key: give the public key only (gpg --export --armor <fingerprint>)`,
      });
    else if (!k.text.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----'))
      problems.push({
        file,
        ...pos,
        message: `source.verify.openpgp: "${k.file}" is not an armored OpenPGP public key; export one with gpg --export --armor <fingerprint>`,
      });
  }
  let ssh: TrustFile | null = null;
  if (v.ssh !== undefined) {
    ssh = read(['source', 'verify', 'ssh'], v.ssh);
    const parsed = parseAllowedSigners(ssh.text, ssh.file);
    problems.push(...parsed.problems);
    if (parsed.problems.length === 0 && parsed.signers.length === 0 && ssh.text !== '')
      problems.push({
        file: ssh.file,
        line: 1,
        col: 1,
        message: 'the allowed-signers file lists no key; add "<principal> <keytype> <base64-key>" lines',
      });
  }
  if (problems.length > 0) throw invalid(problems);
  return { mode: v.mode, allowRewrite: v.allowRewrite, openpgp, ssh };
}

/** Reads every referenced secret; all failures are thrown together as SECRET_READ. */
function resolveSecrets(
  file: string,
  doc: YamlDocument | undefined,
  draft: Draft,
  env: NodeJS.ProcessEnv,
  readSecret: (path: string) => string,
): Omit<Config, 'file'> {
  const failures: SourceProblem[] = [];
  const read = (ref: SecretRef): string => {
    const result = readOneSecret(ref, env, readSecret);
    if (typeof result === 'string') return result;
    const pos = locate(doc, ref.path);
    failures.push({
      file,
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
    state: {
      ...draft.state,
      postgres: draft.state.postgres
        ? {
            ...draft.state.postgres,
            password: draft.state.postgres.password ? read(draft.state.postgres.password) : null,
          }
        : null,
    },
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
