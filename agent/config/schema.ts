/**
 * The shape of `steward.yaml`, declared once. The schema yields the type as
 * written (`ConfigInput`), every default (its `default`s) and the validation
 * (ajv, through core/schema.ts); the hints for keys people commonly write but
 * steward does not take sit next to the keys they stand in for.
 * docs/config.md is checked against this file (test/agent/config/schema.test.ts).
 */
import { fileURLToPath } from 'node:url';
import type { Static } from 'typebox';
import * as Type from 'typebox/type';
import {
  durationFormat,
  type Formats,
  httpUrlFormat,
  httpUrlProblem,
  pathFormat,
  textFormat,
} from '../../core/schema.js';
import { GUARDRAIL_FORMATS, GuardrailsSchema, MODES } from '../../policies/guardrail-config.js';
import { scheduleProblem, timezoneProblem } from '../../policies/windows.js';
import { PROVIDER_FORMATS, ProvidersSchema } from '../../providers/config.js';
import { ALERT_EVENT_NAMES } from '../alert-events.js';
import { nodeNet } from '../../core/builtins.js';

export const LOG_LEVELS = Object.freeze(['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const);
/** `auto`: one readable line per record on a terminal, JSON lines otherwise. */
export const LOG_FORMATS = Object.freeze(['auto', 'pretty', 'json'] as const);

/** Shortest source/reconcile interval: anything below is a busy loop rather than a schedule. */
export const MIN_INTERVAL_MS = 100;

const ONLY_HTTP_OR_LOCAL =
  'steward fetches over smart HTTP(S) (https://…) or reads a local repository path in place';

/** Why source.url is not usable; the URL itself is never echoed (it could carry a token). */
function sourceUrlProblem(raw: string): string | undefined {
  const s = raw.trim();
  if (s === '') return 'must not be empty';
  if (/^[^/\s:@]+@[^/\s:]+:/.test(s)) return `SSH (user@host:path) is not supported: ${ONLY_HTTP_OR_LOCAL}`;
  const scheme = urlScheme(s);
  if (scheme === 'http' || scheme === 'https')
    return httpUrlProblem(
      s,
      'set source.auth.username and source.auth.passwordFile (or passwordEnv) instead',
    );
  if (scheme === 'file') {
    try {
      fileURLToPath(s);
      return undefined;
    } catch {
      return 'is not a valid file:// URL (write file:///absolute/path, or just the path)';
    }
  }
  if (scheme !== undefined) return `scheme "${scheme}" is not supported: ${ONLY_HTTP_OR_LOCAL}`;
  return pathFormat.check(s);
}

/** The lower-cased scheme of a URL (`https`), or undefined for a plain path. */
export function urlScheme(s: string): string | undefined {
  return /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(s)?.[1]?.toLowerCase();
}

/** A branch or tag name, checked against the rules of git-check-ref-format that matter here. */
function refProblem(s: string): string | undefined {
  if (s.trim() === '') return 'must not be empty';
  const bad =
    /[\s~^:?*[\\\0]/.test(s) ||
    s.includes('..') ||
    s.includes('@{') ||
    s.startsWith('-') ||
    s.startsWith('/') ||
    s.endsWith('/') ||
    s.endsWith('.lock');
  return bad ? `"${s}" is not a valid branch or tag name` : undefined;
}

/** A folder inside the repo: relative, no `..` (`""` is the root). */
function repoPathProblem(s: string): string | undefined {
  if (s === '') return undefined;
  if (s.trim() === '') return 'must not be empty';
  if (s.startsWith('/') || s.includes('\\') || s.includes('\0'))
    return 'must be a relative POSIX path inside the repository (e.g. fleet/prod)';
  if (s.split('/').includes('..')) return 'must not contain ".." (it names a folder inside the repository)';
  return undefined;
}

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** `host:port` or `[v6]:port` as host and port, or why not. */
export function parseListen(raw: string): { host: string; port: number } | string {
  const s = raw.trim();
  if (s === '') return 'must not be empty';
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:[\]\s]+):(\d+)$/.exec(s);
  const host = m?.[1];
  const port = m?.[2] === undefined ? Number.NaN : Number(m[2]);
  const bracketed = s.startsWith('[');
  if (
    host === undefined ||
    (bracketed && !nodeNet().isIPv6(host)) ||
    (!bracketed && nodeNet().isIP(host) === 0 && !HOSTNAME.test(host))
  ) {
    return `expected "host:port" or "[ipv6]:port" (e.g. 127.0.0.1:7420 or [::1]:7420), got "${s}"`;
  }
  if (!Number.isInteger(port) || port > 65535) return `port must be between 0 and 65535, got ${m?.[2] ?? ''}`;
  return { host, port };
}

/**
 * state.postgres.url: a `postgres://` or `postgresql://` URL that carries no
 * password, ever (not as `user:password@`, not as `?password=`): the password
 * comes from state.postgres.passwordFile only, so it never sits in a config
 * that is copied around, logged or shown. The URL itself is never echoed.
 */
function postgresUrlProblem(raw: string): string | undefined {
  const s = raw.trim();
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return 'is not a valid URL (e.g. postgres://steward@db.internal/steward)';
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    return 'must be a postgres:// or postgresql:// URL';
  if (url.password !== '' || url.searchParams.has('password'))
    return 'must not carry a password: remove it from the URL and put it in state.postgres.passwordFile';
  if (url.hostname === '' && !url.searchParams.has('host')) return 'has no host';
  return undefined;
}

/** One fleet.rollout.waves entry written as a string: `"N%"` with 0 < N ≤ 100. */
function waveSizeProblem(s: string): string | undefined {
  const m = /^(\d+(?:\.\d+)?)%$/.exec(s.trim());
  const n = m ? Number(m[1]) : Number.NaN;
  if (!(n > 0 && n <= 100))
    return `"${s}" is not a wave size: write a count of agents (e.g. 1) or "N%" with 0 < N ≤ 100`;
  return undefined;
}

/** Every format the config schema uses. */
export const CONFIG_FORMATS: Formats = Object.freeze({
  ...GUARDRAIL_FORMATS,
  ...PROVIDER_FORMATS,
  text: textFormat,
  path: pathFormat,
  'http-url': httpUrlFormat,
  interval: durationFormat(MIN_INTERVAL_MS),
  'source-url': { check: sourceUrlProblem },
  'git-ref': { check: refProblem },
  'repo-path': { check: repoPathProblem },
  'postgres-url': { check: postgresUrlProblem },
  'wave-size': { check: waveSizeProblem },
  'label-key': {
    check: (s) =>
      /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/.test(s)
        ? undefined
        : 'is not a label name (1–63 letters, digits, ".", "_", "/" or "-")',
  },
  'label-value': {
    check: (s) => (s.length > 256 ? 'must be at most 256 characters' : undefined),
  },
  'check-name': { check: checkNameProblem },
  cron: { check: scheduleProblem },
  timezone: { check: timezoneProblem },
  'env-name': {
    check: (s) =>
      s.trim() === ''
        ? 'must not be empty'
        : /^[A-Za-z_][A-Za-z0-9_]*$/.test(s)
          ? undefined
          : 'must be an environment variable name (letters, digits, _)',
  },
  listen: {
    check: (s) => {
      const l = parseListen(s);
      return typeof l === 'string' ? l : undefined;
    },
    notString: (v) =>
      typeof v === 'number' ? `expected "host:port", got a bare port (write "127.0.0.1:${v}")` : undefined,
  },
});

const Text = () => Type.String({ format: 'text' });
const Path = () => Type.String({ format: 'path' });
const EnvName = () => Type.String({ format: 'env-name' });
const Section = { additionalProperties: false, default: {} } as const;

/** A subschema that holds when every key is present (strict mode wants them named in `properties`). */
const present = (...keys: string[]) => ({
  type: 'object',
  properties: Object.fromEntries(keys.map((k) => [k, true])),
  required: keys,
});

const INLINE = 'secrets are never written inline';

const AuthSchema = Type.Object(
  {
    username: Text(),
    passwordFile: Type.Optional(Path()),
    passwordEnv: Type.Optional(EnvName()),
  },
  {
    additionalProperties: false,
    not: present('passwordFile', 'passwordEnv'),
    anyOf: [present('passwordFile'), present('passwordEnv')],
    errorMessage: {
      not: 'set either passwordFile or passwordEnv, not both',
      anyOf: 'needs passwordFile or passwordEnv',
    },
    hints: {
      password: `${INLINE}: use passwordFile or passwordEnv`,
      token: 'use passwordFile or passwordEnv (a token goes where the password would)',
      user: 'use "username"',
    },
  },
);

/** Signed desired state (SPEC §10): the trust policy lives here, never in the repository. */
const VerifySchema = Type.Object(
  {
    mode: Type.Enum(['strict', 'head'], {
      default: 'strict',
      description: 'strict: every commit since the last verified one; head: the tip only',
    }),
    openpgp: Type.Optional(Type.Array(Path(), { minItems: 1 })),
    ssh: Type.Optional(Path()),
    allowRewrite: Type.Boolean({ default: false }),
  },
  {
    additionalProperties: false,
    anyOf: [present('openpgp'), present('ssh')],
    errorMessage: { anyOf: 'needs openpgp (armored public key files) or ssh (an allowed-signers file)' },
    hints: { keys: 'use "openpgp"', gpg: 'use "openpgp"', allowedSigners: 'use "ssh"' },
  },
);

const SourceSchema = Type.Object(
  {
    url: Type.String({ format: 'source-url' }),
    ref: Type.String({ format: 'git-ref', default: 'main' }),
    path: Type.String({ format: 'repo-path', default: '.' }),
    interval: Type.String({ format: 'interval', default: '60s' }),
    engine: Type.Enum(['auto', 'git', 'isomorphic'], {
      default: 'auto',
      description:
        'auto: native git when a usable git binary is on the PATH (any for a local repository, ≥ 2.31 for a remote source), else isomorphic-git',
    }),
    auth: Type.Optional(AuthSchema),
    verify: Type.Optional(VerifySchema),
  },
  {
    ...Section,
    hints: {
      branch: 'use "ref"',
      tag: 'use "ref"',
      dir: 'use "path"',
      folder: 'use "path"',
      password: `${INLINE}: use auth.passwordFile or auth.passwordEnv`,
      token: `${INLINE}: use auth.passwordFile or auth.passwordEnv`,
    },
  },
);

const ReconcileSchema = Type.Object(
  {
    interval: Type.String({ format: 'interval', default: '30s' }),
    mode: Type.Enum([...MODES], { default: 'observe' }),
  },
  { ...Section, hints: { dryRun: 'use "mode: observe"' } },
);

const AdminSchema = Type.Object(
  {
    listen: Type.String({ format: 'listen', default: '127.0.0.1:7420' }),
    /** Default: `<state.dir>/admin-token` (derived, so not a schema default). */
    tokenFile: Type.Optional(Path()),
    webhookSecretFile: Type.Optional(Path()),
  },
  {
    ...Section,
    hints: {
      token: `${INLINE}: use tokenFile`,
      webhookSecret: `${INLINE}: use webhookSecretFile`,
      port: 'use listen: "host:port"',
      host: 'use listen: "host:port"',
    },
  },
);

const AlertSchema = Type.Object(
  {
    url: Type.String({ format: 'http-url' }),
    secretFile: Type.Optional(Path()),
    secretEnv: Type.Optional(EnvName()),
    events: Type.Array(
      Type.Enum([...ALERT_EVENT_NAMES], {
        errorMessage: { enum: 'unknown event "{value}" ({mean}valid: {allowed})' },
      }),
      {
        minItems: 1,
        default: [...ALERT_EVENT_NAMES],
        errorMessage: { minItems: 'must not be empty (leave it out to receive every event)' },
      },
    ),
    timeout: Type.String({ format: 'duration', default: '5s' }),
  },
  {
    additionalProperties: false,
    not: present('secretFile', 'secretEnv'),
    errorMessage: { not: 'set either secretFile or secretEnv, not both' },
    hints: { secret: `${INLINE}: use secretFile or secretEnv`, event: 'use "events", a list' },
  },
);

/** A health check's name: a metric label value and an alert slot, so short and plain. */
function checkNameProblem(s: string): string | undefined {
  if (s.trim() === '') return 'must not be empty';
  if (s.length > 63) return 'must be at most 63 characters';
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(s))
    return `"${s}" is not a valid check name (letters, digits, "-", "_", "."; starting with a letter or digit)`;
  return undefined;
}

/** Time limit of a command check when `timeout` is not written (http and prometheus declare theirs below). */
export const DEFAULT_COMMAND_TIMEOUT = '5s';

const CheckTimeout = () => Type.String({ format: 'duration', default: '5s' });

const HttpCheckSchema = Type.Object(
  {
    url: Type.String({ format: 'http-url' }),
    expectStatus: Type.Integer({ minimum: 100, maximum: 599, default: 200 }),
    timeout: CheckTimeout(),
  },
  {
    additionalProperties: false,
    hints: {
      status: 'use "expectStatus"',
      method: 'a health check always sends GET',
      followRedirects: 'redirects are never followed: point url at the final address',
      headers: `${INLINE}; a health endpoint must answer without credentials`,
    },
  },
);

const PrometheusCheckSchema = Type.Object(
  { url: Type.String({ format: 'http-url' }), query: Text(), timeout: CheckTimeout() },
  { additionalProperties: false, hints: { expr: 'use "query"', endpoint: 'use "url"' } },
);

/** One entry of `health:` (SPEC §11): a name and exactly one of http, command or prometheus. */
const HealthCheckSchema = Type.Object(
  {
    name: Type.String({ format: 'check-name' }),
    interval: Type.String({ format: 'interval', default: '30s' }),
    http: Type.Optional(HttpCheckSchema),
    command: Type.Optional(
      Type.Array(Text(), {
        minItems: 1,
        errorMessage: { minItems: 'must name the program to run: [program, args…]' },
      }),
    ),
    /** The command's time limit (http and prometheus carry theirs inside); DEFAULT_COMMAND_TIMEOUT. */
    timeout: Type.Optional(Type.String({ format: 'duration' })),
    prometheus: Type.Optional(PrometheusCheckSchema),
  },
  {
    additionalProperties: false,
    oneOf: [present('http'), present('command'), present('prometheus')],
    errorMessage: { oneOf: 'needs exactly one of http, command or prometheus' },
    hints: {
      exec: 'use "command", a list of arguments (no shell)',
      script: 'use "command", a list of arguments (no shell)',
      shell: 'commands run without a shell: write "command" as a list of arguments',
      url: 'write it inside http: or prometheus:',
      query: 'write it inside prometheus:',
    },
  },
);

/** Who this agent is in the fleet (SPEC §11). */
const AgentSchema = Type.Object(
  {
    /** Default: the host name (derived, so not a schema default). */
    id: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$',
        errorMessage: {
          pattern: 'must be 1–128 letters, digits, ".", "_" or "-", starting with a letter or digit',
        },
      }),
    ),
    labels: Type.Record(Type.String(), Type.String({ format: 'label-value' }), {
      additionalProperties: false,
      propertyNames: { format: 'label-key' },
      default: {},
    }),
  },
  { ...Section, hints: { name: 'use "id"', tags: 'use "labels"' } },
);

const PostgresSchema = Type.Object(
  {
    url: Type.String({ format: 'postgres-url' }),
    passwordFile: Type.Optional(Path()),
    poolSize: Type.Integer({ minimum: 1, maximum: 100, default: 4 }),
    connectTimeout: Type.String({ format: 'duration', default: '5s' }),
  },
  {
    additionalProperties: false,
    hints: {
      password: `${INLINE}: use passwordFile`,
      passwordEnv: 'use passwordFile',
      pool: 'use "poolSize"',
      max: 'use "poolSize"',
    },
  },
);

const StateSchema = Type.Object(
  {
    dir: Type.String({ format: 'path', default: 'state' }),
    backend: Type.Enum(['files', 'postgres'], {
      default: 'files',
      description: 'files: the embedded store in state.dir; postgres: shared by the fleet',
    }),
    postgres: Type.Optional(PostgresSchema),
  },
  {
    ...Section,
    hints: { url: 'use postgres.url', type: 'use "backend"' },
  },
);

const WaveSchema = Type.Union([Type.Integer({ minimum: 1 }), Type.String({ format: 'wave-size' })], {
  errorMessage: 'each wave is a count of agents (e.g. 1) or "N%" with 0 < N ≤ 100',
});

/** Shards and leases for resources several agents can reach (EC2): docs/fleet-shards.md. */
const ShardsSchema = Type.Object(
  {
    count: Type.Integer({ minimum: 1, maximum: 4096, default: 64 }),
    leaseTtl: Type.String({ format: 'duration', default: '15s' }),
  },
  { additionalProperties: false, hints: { ttl: 'use "leaseTtl"', shards: 'use "count"' } },
);

const FleetSchema = Type.Object(
  {
    rollout: Type.Optional(
      Type.Object(
        {
          waves: Type.Array(WaveSchema, { minItems: 1, maxItems: 20 }),
          bake: Type.String({ format: 'duration', default: '2m' }),
        },
        { additionalProperties: false, hints: { batches: 'use "waves"', serial: 'use "waves"' } },
      ),
    ),
    massDrift: Type.Optional(
      Type.Object(
        { maxDriftedPercent: Type.Number({ exclusiveMinimum: 0, maximum: 100 }) },
        {
          additionalProperties: false,
          hints: { maxDrifted: 'across the fleet only maxDriftedPercent applies' },
        },
      ),
    ),
    shards: Type.Optional(ShardsSchema),
  },
  { ...Section, hints: { waves: 'use "rollout.waves"' } },
);

/** A change window (SPEC §12, policies/windows.ts): from each firing of `schedule`, for `duration`. */
const WindowSchema = Type.Object(
  {
    kind: Type.Enum(['deny', 'allow']),
    schedule: Type.String({ format: 'cron' }),
    duration: Type.String({ format: 'duration' }),
    timezone: Type.String({ format: 'timezone', default: 'UTC' }),
  },
  {
    additionalProperties: false,
    hints: {
      cron: 'use "schedule"',
      start: 'use "schedule" (a cron expression)',
      tz: 'use "timezone"',
      zone: 'use "timezone"',
      for: 'use "duration"',
      length: 'use "duration"',
      type: 'use "kind" (deny or allow)',
    },
  },
);

export const ConfigSchema = Type.Object(
  {
    source: SourceSchema,
    providers: ProvidersSchema,
    reconcile: ReconcileSchema,
    guardrails: GuardrailsSchema,
    admin: AdminSchema,
    alerts: Type.Array(AlertSchema, { default: [] }),
    windows: Type.Array(WindowSchema, { default: [] }),
    state: StateSchema,
    agent: AgentSchema,
    fleet: FleetSchema,
    log: Type.Object(
      {
        level: Type.Enum([...LOG_LEVELS], { default: 'info' }),
        format: Type.Enum([...LOG_FORMATS], { default: 'auto' }),
      },
      Section,
    ),
    health: Type.Array(HealthCheckSchema, { default: [] }),
  },
  {
    additionalProperties: false,
    hints: {
      provider: 'use "providers"',
      alert: 'use "alerts", a list',
      healthChecks: 'use "health", a list',
      checks: 'use "health", a list',
    },
  },
);

/** steward.yaml as written, once validated and defaulted. */
export type ConfigInput = Static<typeof ConfigSchema>;
