/**
 * The operator commands over a running agent's admin API: status, drift,
 * freeze, unfreeze, approve, mode, audit, reconcile, fleet. Each prints a
 * human table by default and, with `--json`, the API's body exactly as it
 * came (stable: what the API documents). An API error is printed as
 * `steward: CODE: message` and exits 1.
 */
import { StewardError } from '../../core/errors.js';
import { escapeControls, escapeControlsDeep } from '../../core/text.js';
import type { FleetView } from '../fleet/types.js';
import type { ApiAnswer, ApiTarget } from './api-client.js';
import { type Command, configFlag, defineCommand, type Flag, type Io } from './command.js';

const apiFlags = {
  config: configFlag,
  api: {
    type: 'string',
    value: 'URL',
    help: "the agent's admin API (default: http://<admin.listen> from the config)",
  },
  'token-file': {
    type: 'string',
    value: 'FILE',
    help: 'the file holding the admin token (default: $STEWARD_TOKEN_FILE, then admin.tokenFile from the config)',
  },
  json: { type: 'boolean', help: "print the API's answer as JSON, unchanged" },
} as const satisfies Record<string, Flag>;

type ApiValues = {
  readonly config?: string | undefined;
  readonly api?: string | undefined;
  readonly 'token-file'?: string | undefined;
  readonly json?: boolean | undefined;
};

const NOTES = [
  "Talks to a running agent's admin API. The token is read from a file, never given as a flag.",
  "Exit 0: done; 1: an error (the API's CODE: message, an unreachable agent, a refused token).",
].join('\n');

// ---------------------------------------------------------------------------
// Rendering helpers
// ---------------------------------------------------------------------------

/** `5s ago`, `3m ago`, `2h ago`, `4d ago`; `in 5m` for a time ahead; `-` for none. */
export function relativeTime(iso: string | null | undefined, now: number = Date.now()): string {
  if (iso === null || iso === undefined) return '-';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  const ms = now - at;
  const s = Math.round(Math.abs(ms) / 1000);
  const text =
    s < 60
      ? `${s}s`
      : s < 3600
        ? `${Math.floor(s / 60)}m`
        : s < 86_400
          ? `${Math.floor(s / 3600)}h`
          : `${Math.floor(s / 86_400)}d`;
  return ms >= 0 ? `${text} ago` : `in ${text}`;
}

/** Aligned columns under a header; the last column is not padded. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** Two aligned columns: label, value (a value may span lines). */
function fields(rows: ReadonlyArray<readonly [string, string | null]>): string[] {
  const kept = rows.filter((r): r is readonly [string, string] => r[1] !== null);
  const width = Math.max(...kept.map(([k]) => k.length)) + 2;
  return kept.flatMap(([k, v]) =>
    v.split('\n').map((l, i) => `${(i === 0 ? k : '').padEnd(width)}${l}`.trimEnd()),
  );
}

const short = (sha: unknown): string => (typeof sha === 'string' ? sha.slice(0, 12) : '-');
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

interface Op {
  op: string;
  path: string;
  value?: unknown;
  diff?: string;
  before?: unknown;
  after?: unknown;
}

/** What a patch does, on one line: `create`, `delete`, or its fields (`replace /spec/mode = "0600"`). */
export function changeSummary(patch: readonly Op[]): string {
  const ensure = patch.find((o) => o.path === '/spec/ensure' && 'value' in o);
  if (ensure?.value === 'present') return 'create';
  if (ensure?.value === 'absent') return 'delete';
  return patch
    .map((o) => {
      if (!('value' in o)) return `${o.op} ${o.path} (${o.diff !== undefined ? 'content' : 'digest'})`;
      const v = JSON.stringify(o.value) ?? '';
      return `${o.op} ${o.path} = ${v.length > 40 ? `${v.slice(0, 39)}…` : v}`;
    })
    .join(', ');
}

// ---------------------------------------------------------------------------
// Calling the API
// ---------------------------------------------------------------------------

/** The HTTP side, loaded only when a command runs (`--help` loads nothing more). */
const client = () => import('./api-client.js');

async function target(values: ApiValues, env: NodeJS.ProcessEnv): Promise<ApiTarget> {
  const { resolveTarget } = await client();
  return resolveTarget({ api: values.api, tokenFile: values['token-file'], config: values.config }, env);
}

/** Prints an API refusal as `steward: CODE: message`; returns the exit code. */
async function refused(io: Io, answer: ApiAnswer): Promise<number> {
  const { code, message } = (await client()).apiError(answer);
  io.err(`steward: ${escapeControls(code)}: ${escapeControls(message)}`);
  return 1;
}

/** A request whose success is rendered by `render` (or printed as is with --json). */
async function show(
  values: ApiValues,
  io: Io,
  env: NodeJS.ProcessEnv,
  method: 'GET' | 'POST' | 'PUT',
  path: string,
  render: (body: never) => string[],
  body?: unknown,
): Promise<number> {
  const t = await target(values, env);
  const answer = await (await client()).request(t, method, path, body);
  if (answer.status >= 300) return refused(io, answer);
  return print(io, answer, values.json === true, render);
}

/** The answer as it came (--json), or rendered; a body this CLI cannot read is said so, not a stack trace. */
function print(io: Io, answer: ApiAnswer, json: boolean, render: (body: never) => string[]): number {
  // What the API says is data: no control character of it reaches the terminal (escaped, still shown).
  if (json) {
    io.out(escapeControls(answer.text, '\n\t'));
    return 0;
  }
  let lines: string[];
  try {
    lines = render(escapeControlsDeep(answer.body) as never);
  } catch {
    io.err(
      'steward: the admin API answered in a shape this steward cannot show (an agent of another version?); --json prints it as it came',
    );
    return 1;
  }
  for (const l of lines) io.out(l);
  return 0;
}

// ---------------------------------------------------------------------------
// The views
// ---------------------------------------------------------------------------

interface StatusBody {
  mode: string;
  freeze: {
    frozen: boolean;
    reason: string | null;
    by: string | null;
    since: string | null;
    until?: string | null;
    hint?: string | null;
  };
  revision: {
    sha: string | null;
    fetchedAt: string | null;
    resources: number;
    verified: boolean | null;
    signer: string | null;
    approved: boolean;
    rejected: { sha: string; at: string | null; problems: string[] } | null;
  };
  state: { writable: boolean; error: string | null };
  source: { error: { code: string; message: string } | null };
  lastCycle: {
    startedAt: string;
    durationMs: number;
    managed: number;
    drifted: number;
    applied: number;
    failed: number;
    held: Record<string, number>;
    observeErrors: number;
    soaking: boolean;
    stuck: number;
  } | null;
  cycles: number;
}

function renderStatus(s: StatusBody): string[] {
  const f = s.freeze;
  const frozen = f.frozen
    ? [
        `yes, since ${relativeTime(f.since)} by ${f.by ?? '?'}: ${f.reason ?? ''}`,
        ...(f.until ? [`ends ${relativeTime(f.until)} (${f.until})`] : []),
        ...(f.hint ? [f.hint] : []),
      ].join('\n')
    : 'no';
  const r = s.revision;
  const signed =
    r.verified === null
      ? 'unverified'
      : r.verified
        ? `verified${r.signer ? ` (${r.signer})` : ''}`
        : 'NOT verified';
  const revision =
    r.sha === null
      ? 'none yet'
      : `${short(r.sha)}  fetched ${relativeTime(r.fetchedAt)}, ${plural(r.resources, 'resource')}, ${signed}${r.approved ? ', approved' : ''}`;
  const c = s.lastCycle;
  const held = c ? Object.entries(c.held).map(([k, n]) => `${k} ${n}`) : [];
  const cycle = c
    ? [
        `${relativeTime(c.startedAt)} (${c.durationMs} ms): ${c.managed} managed, ${c.drifted} drifted, ${c.applied} applied, ${c.failed} failed, ${plural(c.observeErrors, 'observe error')}`,
        ...(held.length > 0 ? [`held: ${held.join(', ')}`] : []),
        ...(c.soaking ? ['soaking: a new revision is observed before it is acted on'] : []),
        ...(c.stuck > 0 ? [`stuck: ${c.stuck}`] : []),
      ].join('\n')
    : 'none yet';
  return fields([
    ['mode', s.mode === 'observe' ? 'observe (detects and reports, applies nothing)' : s.mode],
    ['frozen', frozen],
    ['revision', revision],
    [
      'rejected',
      r.rejected
        ? [`${short(r.rejected.sha)} ${relativeTime(r.rejected.at)}:`, ...r.rejected.problems].join('\n')
        : null,
    ],
    ['state', s.state.writable ? 'writable' : `NOT writable: ${s.state.error ?? ''} (acting on nothing)`],
    ['source', s.source.error ? `${s.source.error.code}: ${s.source.error.message}` : 'ok'],
    ['last cycle', cycle],
    ['cycles', String(s.cycles)],
  ]);
}

interface DriftBody {
  revision: string | null;
  at: string | null;
  drift: Array<{
    kind: string;
    name: string;
    id: string | null;
    patch: Op[];
    firstSeen: string | null;
    attempts: number;
    state: string;
    held: string | null;
  }>;
  errors: Array<{ kind: string; name: string; id: string | null; code: string; error: string }>;
}

function renderDrift(d: DriftBody): string[] {
  if (d.at === null) return ['no cycle has run yet: nothing to show (see steward status)'];
  const head = `revision ${short(d.revision)}, checked ${relativeTime(d.at)}: ${d.drift.length} drifted, ${plural(d.errors.length, 'error')}`;
  const out = [head];
  if (d.drift.length > 0)
    out.push(
      '',
      ...table(
        ['RESOURCE', 'ID', 'STATE', 'HELD', 'SINCE', 'TRIES', 'CHANGE'],
        d.drift.map((x) => [
          `${x.kind}/${x.name}`,
          x.id ?? '-',
          x.state,
          x.held ?? '-',
          relativeTime(x.firstSeen),
          String(x.attempts),
          changeSummary(x.patch),
        ]),
      ),
    );
  if (d.errors.length > 0)
    out.push(
      '',
      'could not be observed (held, never treated as missing):',
      ...table(
        ['RESOURCE', 'ID', 'CODE', 'ERROR'],
        d.errors.map((e) => [`${e.kind}/${e.name}`, e.id ?? '-', e.code, e.error]),
      ),
    );
  return out;
}

interface AuditBody {
  records: Array<{
    at: string;
    revision: string;
    kind: string;
    name: string;
    id: string | null;
    patch: Op[];
    outcome: string;
    error?: string;
    durationMs?: number;
  }>;
  skipped: Array<{ file: string; offset: number; reason: string }>;
}

function renderAudit(a: AuditBody): string[] {
  const out =
    a.records.length === 0
      ? ['no actions recorded']
      : table(
          ['AT', 'OUTCOME', 'RESOURCE', 'ID', 'REVISION', 'MS', 'CHANGE'],
          a.records.map((r) => [
            relativeTime(r.at),
            r.outcome,
            `${r.kind}/${r.name}`,
            r.id ?? '-',
            short(r.revision),
            r.durationMs === undefined ? '-' : String(r.durationMs),
            r.error ? `${changeSummary(r.patch)}: ${r.error}` : changeSummary(r.patch),
          ]),
        );
  for (const s of a.skipped)
    out.push(`skipped an unreadable line: ${s.file} at byte ${s.offset}: ${s.reason}`);
  return out;
}

/** `GET /v1/fleet` as tables: the agents, then the rollout's waves (when one is in progress). */
export function renderFleet(f: FleetView, now: number = Date.now()): string[] {
  const out = [
    `${plural(f.agents.length, 'agent')} (state backend: ${f.backend}); this one is ${f.self}`,
    '',
  ];
  out.push(
    ...table(
      ['AGENT', 'WAVE', 'REVISION', 'HEALTH', 'FROZEN', 'DRIFTED', 'LAST CYCLE', 'SEEN'],
      f.agents.map((a) => {
        const failing = a.health.filter((h) => !h.ok).map((h) => h.name);
        return [
          `${a.id}${a.id === f.self ? ' (self)' : ''}`,
          a.wave === null ? '-' : String(a.wave + 1),
          short(a.revision),
          a.healthy ? 'ok' : `failing${failing.length > 0 ? `: ${failing.join(',')}` : ''}`,
          a.frozen ? 'yes' : 'no',
          String(a.drifted),
          relativeTime(a.lastCycleAt, now),
          `${relativeTime(a.lastSeenAt, now)}${a.alive ? '' : ' (gone)'}`,
        ];
      }),
    ),
  );
  const r = f.rollout;
  if (r) {
    out.push('', `rollout of ${short(r.revision)}:`);
    out.push(
      ...table(
        ['WAVE', 'STATE', 'AGENTS', 'OPENED', 'BAKE ENDS'],
        r.waves.map((w) => [
          String(w.index + 1),
          w.state,
          w.agents.join(','),
          relativeTime(w.openedAt, now),
          w.bakeUntil === null ? '-' : relativeTime(w.bakeUntil, now),
        ]),
      ),
    );
    if (r.halted)
      out.push(
        `halted ${relativeTime(r.halted.at, now)}: ${r.halted.reason} (agents: ${r.halted.agents.join(', ') || '-'}; checks: ${r.halted.checks.join(', ') || '-'})`,
      );
  }
  return out;
}

/** After a change: the state it left, in one or two lines. */
function renderChange(done: string) {
  return (s: StatusBody): string[] => {
    const out = [done];
    if (s.freeze.frozen)
      out.push(`frozen by ${s.freeze.by ?? '?'}: ${s.freeze.reason ?? ''}; nothing is applied`);
    else if (s.mode === 'observe')
      out.push('mode is observe: drift is reported, nothing is applied (steward mode enforce)');
    else out.push('mode is enforce: the agent acts at its next cycle (steward reconcile: now)');
    return out;
  };
}

// ---------------------------------------------------------------------------
// The commands
// ---------------------------------------------------------------------------

const SHA40 = /^[0-9a-f]{40}$/;

/** A full SHA; an abbreviation of the revision in force is expanded from the status. */
async function fullSha(sha: string, values: ApiValues, env: NodeJS.ProcessEnv): Promise<string> {
  const s = sha.toLowerCase();
  if (SHA40.test(s)) return s;
  if (!/^[0-9a-f]{4,39}$/.test(s))
    throw new StewardError(
      'USAGE',
      `"${sha}" is not a commit SHA (40 hex digits, or the first 4 or more of the revision in force)`,
    );
  const answer = await (await client()).request(await target(values, env), 'GET', '/v1/status');
  const current = (answer.body as StatusBody | null)?.revision?.sha;
  if (answer.status === 200 && typeof current === 'string' && current.startsWith(s)) return current;
  throw new StewardError(
    'USAGE',
    `"${sha}" is not the start of the revision in force (${short(current)}): give the full 40-hex SHA`,
  );
}

/** A command that is one call whose answer is shown as it is (GET routes, reconcile). */
function simple(
  name: string,
  summary: string,
  details: string,
  method: 'GET' | 'POST',
  path: string,
  render: (body: never) => string[],
) {
  return defineCommand({
    name,
    summary,
    details,
    notes: NOTES,
    flags: apiFlags,
    run: ({ values, io, env }) => show(values, io, env, method, path, render),
  });
}

const status = simple(
  'status',
  "the running agent's mode, freeze, revision and last cycle",
  'GET /v1/status: mode, freeze (and what to run to lift an automatic one), revision, state, last cycle.',
  'GET',
  '/v1/status',
  renderStatus,
);

const drift = simple(
  'drift',
  'what the running agent found drifted, and why it holds it',
  'GET /v1/drift: each drifted resource with its state, what holds it, since when and its change; observe errors.',
  'GET',
  '/v1/drift',
  renderDrift,
);

const freeze = defineCommand({
  name: 'freeze',
  summary: 'stop the agent acting (it keeps detecting), with a reason',
  details: [
    'POST /v1/freeze {reason[, for | until]}: nothing is applied until steward unfreeze; drift is still detected.',
    'The freeze is persisted: a restart does not lift it. --for or --until make it end by itself.',
  ].join('\n'),
  notes: NOTES,
  flags: {
    reason: { type: 'string', value: 'TEXT', help: 'why (required; shown in the status, alerts and audit)' },
    for: { type: 'string', value: 'DURATION', help: 'end the freeze after this long (e.g. 30m, 2h)' },
    until: {
      type: 'string',
      value: 'TIME',
      help: 'end the freeze at this time (ISO 8601, e.g. 2026-12-24T18:00:00Z)',
    },
    ...apiFlags,
  },
  run: ({ values, io, env }) => {
    if (values.reason === undefined)
      throw new StewardError('USAGE', 'freeze needs --reason TEXT; see steward freeze --help');
    if (values.for !== undefined && values.until !== undefined)
      throw new StewardError('USAGE', 'give --for or --until, not both; see steward freeze --help');
    const body = {
      reason: values.reason,
      ...(values.for !== undefined ? { for: values.for } : {}),
      ...(values.until !== undefined ? { until: values.until } : {}),
    };
    return show(
      values,
      io,
      env,
      'POST',
      '/v1/freeze',
      renderChange('frozen: detection goes on, nothing is applied'),
      body,
    );
  },
});

/** POST /v1/unfreeze, approving `sha` if given. */
function lift(values: ApiValues, io: Io, env: NodeJS.ProcessEnv, sha: string | undefined): Promise<number> {
  const done = sha ? `approved revision ${short(sha)} and unfrozen` : 'unfrozen';
  return show(
    values,
    io,
    env,
    'POST',
    '/v1/unfreeze',
    renderChange(done),
    sha ? { approveRevision: sha } : {},
  );
}

const unfreeze = defineCommand({
  name: 'unfreeze',
  summary: 'lift the freeze (optionally approving a mass change)',
  details: [
    'POST /v1/unfreeze: lifts a freeze, manual or automatic.',
    "--approve SHA exempts that revision's change from the mass-drift halt until it converged (the",
    'per-cycle cap and the rate limit still roll it out gradually), as steward approve SHA does.',
    'Not frozen: NOT_FROZEN, exit 1.',
  ].join('\n'),
  notes: NOTES,
  flags: {
    approve: { type: 'string', value: 'SHA', help: 'the revision whose mass change you approve' },
    ...apiFlags,
  },
  run: async ({ values, io, env }) =>
    lift(
      values,
      io,
      env,
      values.approve === undefined ? undefined : await fullSha(values.approve, values, env),
    ),
});

const approve = defineCommand({
  name: 'approve',
  summary: 'approve the mass change of a revision the agent froze itself on',
  details: [
    'POST /v1/unfreeze {approveRevision: SHA}: lifts the mass-drift freeze and exempts that revision',
    'from the halt until its change converged (e.g. the first start of a config that creates most of',
    'its resources). The per-cycle cap and the rate limit still apply. Not frozen: NOT_FROZEN, exit 1.',
  ].join('\n'),
  notes: NOTES,
  flags: apiFlags,
  positionals: [
    {
      name: 'SHA',
      help: 'the revision (as steward status shows it; 40 hex, or a prefix of the one in force)',
    },
  ],
  run: async ({ values, positionals, io, env }) =>
    lift(values, io, env, await fullSha(positionals[0]!, values, env)),
});

const mode = defineCommand({
  name: 'mode',
  summary: 'switch the agent between observe and enforce',
  details:
    'PUT /v1/mode {mode}: observe detects and reports only; enforce acts within the guardrails. Persisted.',
  notes: NOTES,
  flags: apiFlags,
  positionals: [{ name: 'MODE', help: 'observe or enforce' }],
  run: ({ values, positionals, io, env }) => {
    const m = positionals[0]!;
    if (m !== 'observe' && m !== 'enforce')
      throw new StewardError('USAGE', `mode is observe or enforce, not "${m}"; see steward mode --help`);
    return show(values, io, env, 'PUT', '/v1/mode', renderChange(`mode set to ${m}`), { mode: m });
  },
});

const audit = defineCommand({
  name: 'audit',
  summary: 'the actions the agent applied, newest first',
  details:
    'GET /v1/audit: every action with its outcome (started, applied, failed), resource, revision and change.',
  notes: NOTES,
  flags: {
    limit: { type: 'string', value: 'N', help: 'how many records, 1-1000 (default 100)' },
    ...apiFlags,
  },
  run: ({ values, io, env }) => {
    const limit = values.limit;
    if (limit !== undefined && !/^(1000|[1-9][0-9]{0,2})$/.test(limit))
      throw new StewardError('USAGE', `--limit is a number from 1 to 1000, not "${limit}"`);
    const q = limit === undefined ? '' : `?limit=${limit}`;
    return show(values, io, env, 'GET', `/v1/audit${q}`, renderAudit);
  },
});

const reconcile = simple(
  'reconcile',
  'make the agent poll Git and run a cycle now',
  'POST /v1/reconcile: the agent polls its source and runs a cycle at once (202: accepted).',
  'POST',
  '/v1/reconcile',
  () => ['requested: the agent polls Git and runs a cycle now (see steward status, steward drift)'],
);

const fleet = defineCommand({
  name: 'fleet',
  summary: 'the agents of the fleet, their health and the rollout waves',
  details:
    "GET /v1/fleet: every agent sharing this agent's state backend, its wave, health and drift; the waves.",
  notes: NOTES,
  flags: apiFlags,
  run: async ({ values, io, env }) => {
    const t = await target(values, env);
    const answer = await (await client()).request(t, 'GET', '/v1/fleet');
    if (answer.status === 404) {
      io.err(
        `steward: NOT_FOUND: the fleet view needs the fleet backend: the agent at ${t.url} has no GET /v1/fleet (upgrade it)`,
      );
      return 1;
    }
    if (answer.status >= 300) return refused(io, answer);
    return print(io, answer, values.json === true, (body: FleetView) => renderFleet(body));
  },
});

/** The admin commands, in the order `steward --help` lists them. */
export const ADMIN_COMMANDS: readonly Command[] = [
  status,
  drift,
  freeze,
  unfreeze,
  approve,
  mode,
  audit,
  reconcile,
  fleet,
] as readonly Command[];
