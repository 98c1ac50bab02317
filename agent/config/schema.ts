/**
 * The shape of `steward.yaml`, declared once. The schema yields the type as
 * written (`ConfigInput`), every default (its `default`s) and the validation
 * (ajv, through core/schema.ts); the hints for keys people commonly write but
 * steward does not take sit next to the keys they stand in for.
 * docs/config.md is checked against this file (test/agent/config/schema.test.ts).
 */
import { isIP, isIPv6 } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type Static, Type } from 'typebox';
import {
  durationFormat,
  type Formats,
  httpUrlFormat,
  httpUrlProblem,
  pathFormat,
  textFormat,
} from '../../core/schema.js';
import { GUARDRAIL_FORMATS, GuardrailsSchema, MODES } from '../../policies/guardrail-config.js';
import { PROVIDER_FORMATS, ProvidersSchema } from '../../providers/config.js';
import { ALERT_EVENT_NAMES } from '../alert-events.js';

export const LOG_LEVELS = Object.freeze(['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const);

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
    (bracketed && !isIPv6(host)) ||
    (!bracketed && isIP(host) === 0 && !HOSTNAME.test(host))
  ) {
    return `expected "host:port" or "[ipv6]:port" (e.g. 127.0.0.1:7420 or [::1]:7420), got "${s}"`;
  }
  if (!Number.isInteger(port) || port > 65535) return `port must be between 0 and 65535, got ${m?.[2] ?? ''}`;
  return { host, port };
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
      description: 'auto: native git when a git ≥ 2.31 binary is on the PATH, else isomorphic-git',
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

/** The PostgreSQL connection of the fleet (SPEC §11); the password only ever from a file. */
const PostgresSchema = Type.Object(
  {
    url: Type.String({ format: 'text' }),
    passwordFile: Type.Optional(Path()),
    poolSize: Type.Integer({ minimum: 1, maximum: 100, default: 4 }),
    connectTimeout: Type.String({ format: 'duration', default: '5s' }),
  },
  {
    additionalProperties: false,
    hints: {
      password: `${INLINE}: use passwordFile`,
      host: 'write it in "url"',
      database: 'write it in "url"',
    },
  },
);

const StateSchema = Type.Object(
  {
    dir: Type.String({ format: 'path', default: 'state' }),
    backend: Type.Enum(['files', 'postgres'], { default: 'files' }),
    postgres: Type.Optional(PostgresSchema),
  },
  Section,
);

/** Shards and leases for resources several agents can reach (EC2): docs/fleet-shards.md. */
const ShardsSchema = Type.Object(
  {
    count: Type.Integer({ minimum: 1, maximum: 4096, default: 64 }),
    leaseTtl: Type.String({ format: 'duration', default: '15s' }),
  },
  { additionalProperties: false, hints: { ttl: 'use "leaseTtl"', shards: 'use "count"' } },
);

const FleetSchema = Type.Object({ shards: Type.Optional(ShardsSchema) }, Section);

const AgentIdentitySchema = Type.Object(
  {
    id: Type.Optional(Type.String({ format: 'text' })),
    labels: Type.Record(Type.String(), Type.String(), { default: {} }),
  },
  { ...Section, hints: { name: 'use "id"' } },
);

export const ConfigSchema = Type.Object(
  {
    source: SourceSchema,
    providers: ProvidersSchema,
    reconcile: ReconcileSchema,
    guardrails: GuardrailsSchema,
    admin: AdminSchema,
    alerts: Type.Array(AlertSchema, { default: [] }),
    state: StateSchema,
    agent: AgentIdentitySchema,
    fleet: FleetSchema,
    log: Type.Object({ level: Type.Enum([...LOG_LEVELS], { default: 'info' }) }, Section),
  },
  { additionalProperties: false, hints: { provider: 'use "providers"', alert: 'use "alerts", a list' } },
);

/** steward.yaml as written, once validated and defaulted. */
export type ConfigInput = Static<typeof ConfigSchema>;
