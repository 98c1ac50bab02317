import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import {
  ALERT_EVENTS,
  type Config,
  DEFAULTS,
  EMBEDDED,
  loadConfig,
  type ParseOptions,
  parseConfig,
} from '../../agent/config.js';
import { type SourceProblem, StewardError } from '../../core/errors.js';

let dir = '';
let file = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'steward-config-'));
  file = join(dir, 'steward.yaml');
  writeFileSync(join(dir, 'git-token'), 'git-s3cret\n');
  writeFileSync(join(dir, 'alert-secret'), 'hmac-key\n');
  writeFileSync(join(dir, 'empty-secret'), '\n');
  writeFileSync(join(dir, 'two-newlines'), 'tok\n\n');
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets', 'git-token'), 'relative-s3cret');
});

after(() => rmSync(dir, { recursive: true, force: true }));

const parse = (text: string, opts: ParseOptions = {}): Config =>
  parseConfig(text, file, { env: {}, ...opts });

/** The StewardError thrown for `text` (fails the test if none is). */
function failure(text: string, opts: ParseOptions = {}): StewardError {
  try {
    parse(text, opts);
  } catch (e) {
    assert.ok(e instanceof StewardError, `expected a StewardError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected the config to be rejected');
}

function problems(text: string): SourceProblem[] {
  const e = failure(text);
  assert.equal(e.code, 'CONFIG_INVALID');
  return e.details['problems'] as SourceProblem[];
}

/** Asserts exactly one problem, at line:col, whose message matches. */
function assertOneProblem(text: string, line: number, col: number, message: RegExp | string): void {
  const found = problems(text);
  assert.equal(found.length, 1, `expected one problem, got:\n${found.map((p) => p.message).join('\n')}`);
  const [p] = found;
  assert.ok(p);
  assert.deepEqual({ line: p.line, col: p.col }, { line, col }, p.message);
  if (typeof message === 'string') assert.equal(p.message, message);
  else assert.match(p.message, message);
}

const URL_ONLY = 'source: { url: https://git.example.org/infra/desired.git }\n';

describe('parseConfig: the SPEC §3 example', () => {
  it('parses every key', () => {
    const text = `source:
  url: https://git.example.org/infra/desired.git
  ref: main
  path: fleet
  interval: 60s
  auth: { username: git, passwordFile: ${dir}/git-token }
providers:
  file: { root: /srv/managed }
  aws-ec2: { region: eu-west-1, endpoint: http://127.0.0.1:5000 }
reconcile: { interval: 30s, mode: observe }
guardrails:
  maxActionsPerCycle: 10
  massDrift: { maxDrifted: 50, maxDriftedPercent: 30, minManaged: 5 }
  rateLimit: { actionsPerMinute: 60, burst: 10 }
  backoff: { base: 30s, factor: 2, max: 30m, jitter: 0.2 }
  nonConvergence: { alertAfterCycles: 3 }
  soak: { observeCycles: 1 }
  fieldPolicy: { Ec2Instance: { /spec/instanceType: report } }
admin: { listen: 127.0.0.1:7420, tokenFile: /etc/steward/admin-token, webhookSecretFile: /etc/steward/webhook-secret }
alerts:
  - url: https://hooks.example.org/steward
    secretFile: ${dir}/alert-secret
    events: [mass_drift_frozen, resource_stuck, revision_rejected, source_unreachable]
state: { dir: /var/lib/steward }
`;
    const expected: Config = {
      file,
      source: {
        url: 'https://git.example.org/infra/desired.git',
        kind: 'http',
        ref: 'main',
        path: 'fleet',
        engine: 'auto',
        verify: null,
        intervalMs: 60_000,
        auth: { username: 'git', password: 'git-s3cret' },
      },
      providers: {
        file: { root: '/srv/managed' },
        'aws-ec2': { region: 'eu-west-1', endpoint: 'http://127.0.0.1:5000' },
      },
      reconcile: { intervalMs: 30_000, mode: 'observe' },
      guardrails: {
        maxActionsPerCycle: 10,
        massDrift: { maxDrifted: 50, maxDriftedPercent: 30, minManaged: 5 },
        rateLimit: { actionsPerMinute: 60, burst: 10 },
        backoff: { baseMs: 30_000, factor: 2, maxMs: 1_800_000, jitter: 0.2 },
        nonConvergence: { alertAfterCycles: 3 },
        soak: { observeCycles: 1 },
        fieldPolicy: { Ec2Instance: { '/spec/instanceType': 'report' } },
      },
      admin: {
        listen: { host: '127.0.0.1', port: 7420 },
        tokenFile: '/etc/steward/admin-token',
        webhookSecretFile: '/etc/steward/webhook-secret',
      },
      alerts: [
        {
          url: 'https://hooks.example.org/steward',
          secret: 'hmac-key',
          events: ['mass_drift_frozen', 'resource_stuck', 'revision_rejected', 'source_unreachable'],
          timeoutMs: 5_000,
        },
      ],
      windows: [],
      state: { dir: '/var/lib/steward', backend: 'files', postgres: null },
      agent: { id: hostname(), labels: {} },
      fleet: { rollout: null, massDrift: null, shards: null },
      log: { level: 'info', format: 'auto' },
      health: [],
    };
    assert.deepEqual(parse(text), expected);
  });
});

describe('parseConfig: defaults', () => {
  it('fills every default around source.url', () => {
    const expected: Config = {
      file,
      source: {
        url: 'https://git.example.org/infra/desired.git',
        kind: 'http',
        ref: 'main',
        path: '.',
        engine: 'auto',
        verify: null,
        intervalMs: 60_000,
        auth: null,
      },
      providers: { file: null, 'aws-ec2': null },
      reconcile: { intervalMs: 30_000, mode: 'observe' },
      guardrails: {
        maxActionsPerCycle: 10,
        massDrift: { maxDrifted: 50, maxDriftedPercent: 30, minManaged: 5 },
        rateLimit: { actionsPerMinute: 60, burst: 10 },
        backoff: { baseMs: 30_000, factor: 2, maxMs: 1_800_000, jitter: 0.2 },
        nonConvergence: { alertAfterCycles: 3 },
        soak: { observeCycles: 1 },
        fieldPolicy: {},
      },
      admin: {
        listen: { host: '127.0.0.1', port: 7420 },
        tokenFile: join(dir, 'state', 'admin-token'),
        webhookSecretFile: null,
      },
      alerts: [],
      windows: [],
      state: { dir: join(dir, 'state'), backend: 'files', postgres: null },
      agent: { id: hostname(), labels: {} },
      fleet: { rollout: null, massDrift: null, shards: null },
      log: { level: 'info', format: 'auto' },
      health: [],
    };
    assert.deepEqual(parse(URL_ONLY), expected);
  });

  it('treats an empty value (key:) like a missing key', () => {
    const c = parse(`${URL_ONLY}providers:\n  file:\nreconcile:\n  mode:\nalerts:\n`);
    assert.equal(c.providers.file, null);
    assert.equal(c.reconcile.mode, 'observe');
    assert.deepEqual(c.alerts, []);
  });

  it('defaults the admin token into a configured state dir', () => {
    const c = parse(`${URL_ONLY}state: { dir: /var/lib/steward }\n`);
    assert.equal(c.admin.tokenFile, '/var/lib/steward/admin-token');
  });

  it('gives an alert every event and a 5s timeout unless told otherwise', () => {
    const c = parse(`${URL_ONLY}alerts:\n  - url: https://hooks.example.org/x\n`);
    assert.deepEqual(c.alerts[0], {
      url: 'https://hooks.example.org/x',
      secret: null,
      events: ALERT_EVENTS,
      timeoutMs: 5_000,
    });
  });

  it('keeps DEFAULTS in step with the SPEC and frozen', () => {
    assert.equal(DEFAULTS.reconcile.mode, 'observe');
    assert.equal(DEFAULTS.guardrails.maxActionsPerCycle, 10);
    assert.ok(Object.isFrozen(DEFAULTS));
    assert.ok(Object.isFrozen(DEFAULTS.guardrails.backoff));
  });
});

describe('parseConfig: change windows', () => {
  it('reads each window, the duration in milliseconds, the time zone UTC unless given', () => {
    const c = parse(
      `${URL_ONLY}windows:\n  - { kind: deny, schedule: "0 18 * * 5", duration: 64h, timezone: Europe/Berlin }\n  - { kind: allow, schedule: "0 9 * * 1-5", duration: 8h }\n`,
    );
    assert.deepEqual(c.windows, [
      { kind: 'deny', schedule: '0 18 * * 5', durationMs: 64 * 3_600_000, timezone: 'Europe/Berlin' },
      { kind: 'allow', schedule: '0 9 * * 1-5', durationMs: 8 * 3_600_000, timezone: 'UTC' },
    ]);
  });

  it('rejects a bad cron schedule at its key, saying what to write', () => {
    assertOneProblem(
      `${URL_ONLY}windows:\n  - kind: deny\n    schedule: "61 18 * * 5"\n    duration: 1h\n`,
      4,
      5,
      /windows\[0\]\.schedule.*"61 18 \* \* 5" is not a valid cron schedule: Invalid value for minute: 61 \(e\.g\. "0 18 \* \* 5"/,
    );
  });

  it('rejects a time zone that is not IANA at its key', () => {
    assertOneProblem(
      `${URL_ONLY}windows:\n  - kind: deny\n    schedule: "0 18 * * 5"\n    duration: 1h\n    timezone: CEST+1\n`,
      6,
      5,
      /windows\[0\]\.timezone.*"CEST\+1" is not an IANA time zone \(e\.g\. UTC, Europe\/Berlin/,
    );
  });

  it('rejects a duration without a unit and an unknown kind', () => {
    const found = problems(`${URL_ONLY}windows:\n  - { kind: block, schedule: "@daily", duration: 64 }\n`);
    assert.equal(found.length, 2, found.map((p) => p.message).join('\n'));
    assert.match(found.map((p) => p.message).join('\n'), /kind.*deny, allow/);
    assert.match(found.map((p) => p.message).join('\n'), /a unit is required \(write 64s/);
  });
});

describe('parseConfig: unknown keys', () => {
  const cases: Array<{ name: string; text: string; line: number; col: number; message: string }> = [
    {
      name: 'at the top level',
      text: `${URL_ONLY}logs: { level: debug }\n`,
      line: 2,
      col: 1,
      message: 'unknown key "logs" (did you mean "log"?)',
    },
    {
      name: 'nested, with a did-you-mean',
      text: `${URL_ONLY}guardrails:\n  maxActionsPerCycle: 5\n  maxActions: 3\n`,
      line: 4,
      col: 3,
      message: 'unknown key "guardrails.maxActions" (did you mean "maxActionsPerCycle"?)',
    },
    {
      name: 'in a flow mapping two levels down',
      text: `${URL_ONLY}guardrails:\n  massDrift: { maxDrifted: 5, maxDriftPercent: 10 }\n`,
      line: 3,
      col: 31,
      message: 'unknown key "guardrails.massDrift.maxDriftPercent" (did you mean "maxDriftedPercent"?)',
    },
    {
      name: 'in a list item',
      text: `${URL_ONLY}alerts:\n  - url: https://h.example.org/a\n    retries: 3\n`,
      line: 4,
      col: 5,
      message: 'unknown key "alerts[0].retries"',
    },
    {
      name: 'a duration written as milliseconds',
      text: `${URL_ONLY}reconcile:\n  intervalMs: 30000\n`,
      line: 3,
      col: 3,
      message: 'unknown key "reconcile.intervalMs" (write "interval" with a unit, e.g. interval: 30s)',
    },
    {
      name: 'a renamed option',
      text: 'source:\n  url: https://g.example.org/r.git\n  branch: main\n',
      line: 3,
      col: 3,
      message: 'unknown key "source.branch" (use "ref")',
    },
    {
      name: 'an inline admin token',
      text: `${URL_ONLY}admin:\n  token: abc\n`,
      line: 3,
      col: 3,
      message: 'unknown key "admin.token" (secrets are never written inline: use tokenFile)',
    },
  ];
  for (const c of cases) {
    it(`is reported ${c.name}`, () => assertOneProblem(c.text, c.line, c.col, c.message));
  }

  it('never echoes the value of an inline password', () => {
    const e = failure(
      'source:\n  url: https://g.example.org/r.git\n  auth: { username: git, password: hunter2 }\n',
    );
    assert.match(e.message, /unknown key "source.auth.password" \(secrets are never written inline/);
    assert.doesNotMatch(e.message, /hunter2/);
    assert.doesNotMatch(JSON.stringify(e.details), /hunter2/);
  });
});

describe('parseConfig: types and ranges', () => {
  const cases: Array<[string, string, RegExp]> = [
    [
      'a count as text',
      'guardrails: { maxActionsPerCycle: ten }',
      /^guardrails.maxActionsPerCycle: expected an integer, got a string$/,
    ],
    ['a fractional count', 'guardrails: { maxActionsPerCycle: 1.5 }', /expected an integer, got number 1.5/],
    ['a negative count', 'guardrails: { maxActionsPerCycle: -1 }', /must be at least 0, got -1/],
    ['a huge count', 'guardrails: { maxActionsPerCycle: 1e100 }', /maxActionsPerCycle: is too large$/],
    ['a section as a scalar', 'guardrails: 5', /^guardrails: expected a mapping, got number 5$/],
    [
      'alerts as a mapping',
      'alerts: { url: https://h.example.org }',
      /^alerts: expected a list, got a mapping$/,
    ],
    ['a number for a string', 'log: { level: 5 }', /log.level: expected a string, got number 5 \(quote it/],
    [
      'an unknown enum value',
      'reconcile: { mode: enforced }',
      /expected one of observe, enforce, got "enforced" \(did you mean "enforce"\?\)/,
    ],
    [
      'an unknown log level',
      'log: { level: verbose }',
      /log.level: expected one of fatal, error, warn, info, debug, trace/,
    ],
    [
      'maxDriftedPercent 0',
      'guardrails: { massDrift: { maxDriftedPercent: 0 } }',
      /maxDriftedPercent: must be greater than 0 and at most 100, got 0/,
    ],
    [
      'maxDriftedPercent 101',
      'guardrails: { massDrift: { maxDriftedPercent: 101 } }',
      /maxDriftedPercent: must be greater than 0 and at most 100, got 101/,
    ],
    [
      'jitter above 1',
      'guardrails: { backoff: { jitter: 1.5 } }',
      /backoff.jitter: must be at least 0 and at most 1/,
    ],
    ['factor below 1', 'guardrails: { backoff: { factor: 0.5 } }', /backoff.factor: must be at least 1/],
    ['burst 0', 'guardrails: { rateLimit: { burst: 0 } }', /rateLimit.burst: must be at least 1, got 0/],
    [
      'actionsPerMinute 0',
      'guardrails: { rateLimit: { actionsPerMinute: 0 } }',
      /actionsPerMinute: must be greater than 0/,
    ],
    [
      'alertAfterCycles 0',
      'guardrails: { nonConvergence: { alertAfterCycles: 0 } }',
      /alertAfterCycles: must be at least 1/,
    ],
    [
      'backoff max below base',
      'guardrails: { backoff: { base: 1m, max: 30s } }',
      /backoff.max: max \(30s\) must not be below base \(1m\)/,
    ],
    [
      'a non-kind in fieldPolicy',
      'guardrails: { fieldPolicy: { ec2: { /spec/x: report } } }',
      /fieldPolicy.ec2: is not a resource kind/,
    ],
    [
      'a pointer outside spec',
      'guardrails: { fieldPolicy: { Ec2Instance: { /metadata/name: report } } }',
      /must be a JSON pointer into the spec/,
    ],
    [
      'a bad pointer escape',
      'guardrails: { fieldPolicy: { File: { /spec/a~2b: report } } }',
      /invalid escape/,
    ],
    [
      'an unknown field policy',
      'guardrails: { fieldPolicy: { File: { /spec/mode: ignore } } }',
      /expected one of revert, report, got "ignore"/,
    ],
    [
      'an alert to ftp',
      'alerts: [{ url: "ftp://h.example.org/x" }]',
      /^alerts\[0\].url: must be an http:\/\/ or https:\/\/ URL$/,
    ],
    [
      'an empty event list',
      'alerts: [{ url: "https://h.example.org/x", events: [] }]',
      /events: must not be empty/,
    ],
    ['a bad region', 'providers: { aws-ec2: { region: Ireland } }', /"Ireland" is not an AWS region name/],
    [
      'the filesystem root as file root',
      'providers: { file: { root: / } }',
      /must not be the filesystem root/,
    ],
    [
      'a bad ref',
      'source: { url: "https://g.example.org/r.git", ref: "a..b" }',
      /source.ref: "a..b" is not a valid branch or tag name/,
    ],
    ['a ~ path', 'state: { dir: ~/steward }', /"~" is not expanded/],
  ];
  for (const [name, yaml, pattern] of cases) {
    it(`rejects ${name}`, () => {
      const text = yaml.startsWith('source:') ? `${yaml}\n` : `${URL_ONLY}${yaml}\n`;
      const found = problems(text);
      assert.equal(found.length, 1, found.map((p) => p.message).join('\n'));
      assert.match(found[0]!.message, pattern);
      assert.equal(found[0]!.line, yaml.startsWith('source:') ? 1 : 2);
    });
  }

  it('accepts the edges of each range', () => {
    const c = parse(
      `${URL_ONLY}guardrails:\n  maxActionsPerCycle: 0\n  massDrift: { maxDrifted: 0, maxDriftedPercent: 100, minManaged: 0 }\n` +
        '  rateLimit: { actionsPerMinute: 0.5, burst: 1 }\n  backoff: { base: 1ms, factor: 1, max: 1ms, jitter: 0 }\n' +
        '  soak: { observeCycles: 0 }\n',
    );
    assert.equal(c.guardrails.maxActionsPerCycle, 0);
    assert.equal(c.guardrails.massDrift.maxDriftedPercent, 100);
    assert.equal(c.guardrails.rateLimit.actionsPerMinute, 0.5);
    assert.deepEqual(c.guardrails.backoff, { baseMs: 1, factor: 1, maxMs: 1, jitter: 0 });
    assert.equal(c.guardrails.soak.observeCycles, 0);
  });

  it('de-duplicates alert events and suggests a near name for a typo', () => {
    assert.deepEqual(
      parse(`${URL_ONLY}alerts: [{ url: "https://h.example.org", events: [frozen, frozen] }]\n`).alerts[0]
        ?.events,
      ['frozen'],
    );
    const [p] = problems(
      `${URL_ONLY}alerts: [{ url: "https://h.example.org", events: [frozen, resource_stuk] }]\n`,
    );
    assert.match(
      p!.message,
      /unknown event "resource_stuk" \(did you mean "resource_stuck"\? valid: mass_drift_frozen, frozen,/,
    );
    assert.deepEqual({ line: p!.line, col: p!.col }, { line: 2, col: 59 });
  });
});

describe('parseConfig: required keys and document shape', () => {
  it('names a missing source.url at the source key', () => {
    assertOneProblem(
      'log: { level: info }\nsource:\n  ref: main\n',
      2,
      1,
      'missing required key "source.url"',
    );
  });

  it('names a missing source.url when source is absent', () => {
    assertOneProblem('log: { level: info }\n', 1, 1, 'missing required key "source.url"');
  });

  it('rejects an empty file', () => {
    assertOneProblem('', 1, 1, /the config is empty: at least source.url is required/);
  });

  it('rejects a config that is not a mapping', () => {
    assertOneProblem('- a\n- b\n', 1, 1, 'the config: expected a mapping, got a list');
  });

  it('rejects a second YAML document', () => {
    assertOneProblem(
      `${URL_ONLY}---\nlog: { level: info }\n`,
      3,
      1,
      /must be a single YAML document; found 2/,
    );
  });

  it('reports a YAML syntax error with its position', () => {
    const [p, ...rest] = problems('source:\n  url: [unclosed\nlog: {}\n');
    assert.equal(rest.length, 0);
    assert.match(p!.message, /^invalid YAML: /);
    assert.ok(p!.line >= 2);
  });

  it('names missing keys of optional sections', () => {
    const found = problems(
      `${URL_ONLY}providers:\n  file: {}\n  aws-ec2: { endpoint: "http://127.0.0.1:5000" }\nalerts:\n  - events: [frozen]\n  -\n`,
    );
    assert.deepEqual(
      found.map((p) => `${p.line}:${p.col}: ${p.message}`),
      [
        '3:3: missing required key "providers.file.root"',
        '4:3: missing required key "providers.aws-ec2.region"',
        // a bare "-" item has no position of its own: it is reported at its list
        '5:1: alerts[1]: expected a mapping with at least url',
        '6:5: missing required key "alerts[0].url"',
      ],
    );
  });
});

describe('parseConfig: durations', () => {
  const cases: Array<[string, RegExp]> = [
    [
      'source: { url: "https://g.example.org/r.git", interval: 30 }',
      /^source.interval: invalid duration 30: a unit is required \(write 30s, not 30\)$/,
    ],
    ['reconcile: { interval: "30" }', /^reconcile.interval: invalid duration "30": a unit is required/],
    ['reconcile: { interval: 5x }', /^reconcile.interval: invalid duration "5x": unknown unit "x"/],
    ['reconcile: { interval: -5s }', /must not be negative/],
    [
      'reconcile: { interval: 10ms }',
      /^reconcile.interval: must be between 100ms and 596h31m23s647ms, got 10ms$/,
    ],
    ['reconcile: { interval: 600h }', /must be between 100ms and/],
    [
      'guardrails: { backoff: { base: [1s] } }',
      /^guardrails.backoff.base: expected a duration such as 30s, got a list$/,
    ],
    ['alerts: [{ url: "https://h.example.org", timeout: 0s }]', /^alerts\[0\].timeout: must be between 1ms/],
  ];
  for (const [yaml, pattern] of cases) {
    it(`rejects ${yaml}`, () => {
      const found = problems(yaml.startsWith('source:') ? yaml : `${URL_ONLY}${yaml}`);
      assert.equal(found.length, 1, found.map((p) => p.message).join('\n'));
      assert.match(found[0]!.message, pattern);
    });
  }

  it('converts durations to milliseconds', () => {
    const c = parse(
      'source: { url: "https://g.example.org/r.git", interval: 1h30m }\nreconcile: { interval: 500ms }\n' +
        'guardrails: { backoff: { base: 1.5s, max: 2h } }\nalerts: [{ url: "https://h.example.org", timeout: 10s }]\n',
    );
    assert.equal(c.source.intervalMs, 5_400_000);
    assert.equal(c.reconcile.intervalMs, 500);
    assert.equal(c.guardrails.backoff.baseMs, 1_500);
    assert.equal(c.guardrails.backoff.maxMs, 7_200_000);
    assert.equal(c.alerts[0]?.timeoutMs, 10_000);
  });
});

describe('parseConfig: source.url', () => {
  const rejected: Array<[string, RegExp]> = [
    [
      'ssh://git@github.com/org/repo.git',
      /^source.url: scheme "ssh" is not supported: steward fetches over smart HTTP\(S\)/,
    ],
    ['git@github.com:org/repo.git', /^source.url: SSH \(user@host:path\) is not supported/],
    ['git://github.com/org/repo.git', /scheme "git" is not supported/],
    ['ftp://example.org/repo.git', /scheme "ftp" is not supported/],
    ['https://', /is not a valid http\(s\) URL/],
  ];
  for (const [url, pattern] of rejected) {
    it(`rejects ${url}`, () => assertOneProblem(`source:\n  url: "${url}"\n`, 2, 3, pattern));
  }

  it('rejects credentials in the URL without leaking them', () => {
    const e = failure('source:\n  url: https://deploy:pa55w0rd-XYZ@git.example.org/infra/desired.git\n');
    assert.equal(e.code, 'CONFIG_INVALID');
    assert.match(
      e.message,
      /source.url: must not embed credentials .*set source.auth.username and source.auth.passwordFile/,
    );
    assert.doesNotMatch(e.message, /pa55w0rd-XYZ/);
    assert.doesNotMatch(JSON.stringify(e.details), /pa55w0rd-XYZ/);
    assert.doesNotMatch(
      `${e.message}${JSON.stringify(e.details)}`,
      /git\.example\.org/,
      'the URL is not echoed at all',
    );
  });

  it('rejects credentials in an alert URL without leaking them', () => {
    const e = failure(`${URL_ONLY}alerts: [{ url: "https://u:tok-987@hooks.example.org/x" }]\n`);
    assert.match(e.message, /alerts\[0\].url: must not embed credentials/);
    assert.doesNotMatch(e.message, /tok-987/);
  });

  const local: Array<[string, () => string]> = [
    ['./repo', () => join(dir, 'repo')],
    ['../elsewhere/repo.git', () => join(dir, '..', 'elsewhere', 'repo.git')],
    ['/srv/git/desired', () => '/srv/git/desired'],
    ['file:///srv/git/desired', () => '/srv/git/desired'],
  ];
  for (const [url, expected] of local) {
    it(`reads ${url} as a local repository`, () => {
      const c = parse(`source: { url: "${url}" }\n`);
      assert.equal(c.source.kind, 'local');
      assert.equal(c.source.url, expected());
    });
  }

  it('rejects auth for a local repository', () => {
    assertOneProblem(
      'source:\n  url: ./repo\n  auth: { username: git, passwordEnv: TOKEN }\n',
      3,
      3,
      /source.auth: only applies to http\(s\) sources/,
    );
  });
});

describe('parseConfig: source.path', () => {
  const normalised: Array<[string, string]> = [
    ['fleet', 'fleet'],
    ['./fleet/', 'fleet'],
    ['fleet/prod/', 'fleet/prod'],
    ['a//b/./c', 'a/b/c'],
    ['.', '.'],
    ['./', '.'],
    ['""', '.'],
  ];
  for (const [input, expected] of normalised) {
    it(`normalises ${input} to ${expected}`, () => {
      assert.equal(
        parse(`source: { url: "https://g.example.org/r.git", path: ${input} }\n`).source.path,
        expected,
      );
    });
  }

  for (const bad of ['../fleet', 'fleet/../../x', '/abs/fleet', 'a\\b']) {
    it(`rejects ${bad}`, () => {
      const [p, ...rest] = problems(
        `source: { url: "https://g.example.org/r.git", path: "${bad.replace('\\', '\\\\')}" }\n`,
      );
      assert.equal(rest.length, 0);
      assert.match(p!.message, /^source.path: must/);
    });
  }
});

describe('parseConfig: admin.listen', () => {
  const ok: Array<[string, string, number]> = [
    ['127.0.0.1:7420', '127.0.0.1', 7420],
    ['0.0.0.0:8080', '0.0.0.0', 8080],
    ['[::1]:7420', '::1', 7420],
    ['localhost:0', 'localhost', 0],
    ['admin.internal:65535', 'admin.internal', 65535],
  ];
  for (const [listen, host, port] of ok) {
    it(`accepts ${listen}`, () => {
      assert.deepEqual(parse(`${URL_ONLY}admin: { listen: "${listen}" }\n`).admin.listen, { host, port });
    });
  }

  const bad: Array<[string, RegExp]> = [
    ['7420', /got a bare port \(write "127.0.0.1:7420"\)/],
    ['"::1:7420"', /expected "host:port" or "\[ipv6\]:port"/],
    ['"[nothost]:7420"', /expected "host:port"/],
    ['"localhost"', /expected "host:port"/],
    ['"localhost:70000"', /port must be between 0 and 65535, got 70000/],
  ];
  for (const [listen, pattern] of bad) {
    it(`rejects ${listen}`, () =>
      assertOneProblem(`${URL_ONLY}admin: { listen: ${listen} }\n`, 2, 10, pattern));
  }
});

describe('parseConfig: secrets', () => {
  it('reads source.auth.passwordEnv from the given env', () => {
    const c = parse(
      'source:\n  url: https://g.example.org/r.git\n  auth: { username: git, passwordEnv: GIT_TOKEN }\n',
      { env: { GIT_TOKEN: 'from-env' } },
    );
    assert.deepEqual(c.source.auth, { username: 'git', password: 'from-env' });
  });

  it('trims exactly one trailing newline from a secret file', () => {
    const c = parse(
      `source:\n  url: https://g.example.org/r.git\n  auth: { username: git, passwordFile: two-newlines }\n`,
    );
    assert.equal(c.source.auth?.password, 'tok\n');
  });

  it('reads secrets through the readSecret hook', () => {
    const seen: string[] = [];
    const readSecret = (p: string): string => {
      seen.push(p);
      return 'hooked\n';
    };
    const c = parse(`${URL_ONLY}alerts: [{ url: "https://h.example.org", secretFile: keys/alert }]\n`, {
      readSecret,
    });
    assert.equal(c.alerts[0]?.secret, 'hooked');
    assert.deepEqual(seen, [join(dir, 'keys', 'alert')]);
  });

  it('fails with SECRET_READ naming the key and the path of a missing file', () => {
    const e = failure(
      'source:\n  url: https://g.example.org/r.git\n  auth: { username: git, passwordFile: /nonexistent/git-token }\n',
    );
    assert.equal(e.code, 'SECRET_READ');
    assert.equal(
      e.message,
      `${file}:3:26: source.auth.passwordFile: cannot read secret file "/nonexistent/git-token": ENOENT (no such file)`,
    );
  });

  it('reports every unreadable secret at once, never their content', () => {
    const e = failure(
      `source:\n  url: https://g.example.org/r.git\n  auth: { username: git, passwordFile: empty-secret }\n` +
        'alerts:\n  - url: https://h.example.org\n    secretEnv: ALERT_KEY\n',
      { env: { OTHER: 'x' } },
    );
    assert.equal(e.code, 'SECRET_READ');
    const lines = e.message.split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /:3:26: source.auth.passwordFile: secret file ".*empty-secret" is empty$/);
    assert.match(lines[1]!, /:6:5: alerts\[0\].secretEnv: environment variable ALERT_KEY is not set$/);
  });

  it('does not read secrets while the config is invalid', () => {
    let reads = 0;
    const e = failure(
      `source:\n  url: https://g.example.org/r.git\n  auth: { username: git, passwordFile: x }\nlog: { level: loud }\n`,
      {
        readSecret: () => {
          reads++;
          return 'x';
        },
      },
    );
    assert.equal(e.code, 'CONFIG_INVALID');
    assert.equal(reads, 0);
  });

  const authProblems: Array<[string, RegExp]> = [
    ['{ username: git }', /^source.auth: needs passwordFile or passwordEnv$/],
    [
      '{ username: git, passwordFile: a, passwordEnv: B }',
      /^source.auth: set either passwordFile or passwordEnv, not both$/,
    ],
    ['{ passwordEnv: B }', /^missing required key "source.auth.username"$/],
    ['{ username: git, passwordEnv: "not a name" }', /passwordEnv: must be an environment variable name/],
  ];
  for (const [auth, pattern] of authProblems) {
    it(`rejects source.auth ${auth}`, () => {
      const found = problems(`source:\n  url: https://g.example.org/r.git\n  auth: ${auth}\n`);
      assert.equal(found.length, 1, found.map((p) => p.message).join('\n'));
      assert.match(found[0]!.message, pattern);
    });
  }
});

describe('parseConfig: relative paths', () => {
  it('resolves every path against the config file directory', () => {
    const c = parse(
      'source:\n  url: https://g.example.org/r.git\n  auth: { username: git, passwordFile: secrets/git-token }\n' +
        'providers: { file: { root: managed } }\n' +
        'admin: { tokenFile: ./secrets/admin-token, webhookSecretFile: ../hook-secret }\n' +
        'state: { dir: var/state }\n',
    );
    assert.equal(c.source.auth?.password, 'relative-s3cret');
    assert.equal(c.providers.file?.root, join(dir, 'managed'));
    assert.equal(c.admin.tokenFile, join(dir, 'secrets', 'admin-token'));
    assert.equal(c.admin.webhookSecretFile, join(dir, '..', 'hook-secret'));
    assert.equal(c.state.dir, join(dir, 'var', 'state'));
  });

  it('resolves against the working directory for an embedded config', () => {
    const c = parseConfig(URL_ONLY, EMBEDDED, { env: {} });
    assert.equal(c.file, EMBEDDED);
    assert.equal(c.state.dir, join(process.cwd(), 'state'));
  });
});

describe('parseConfig: many problems at once', () => {
  it('reports every problem, one per line, in file order', () => {
    const text = [
      'source:',
      '  url: ssh://git.example.org/r.git',
      '  interval: 30',
      'reconcile: { mode: enforced }',
      'guardrails:',
      '  massDrift: { maxDriftedPercent: 101 }',
      '  maxActions: 3',
      'extra: true',
    ].join('\n');
    const e = failure(text);
    assert.equal(e.code, 'CONFIG_INVALID');
    const lines = e.message.split('\n');
    assert.equal(lines.length, 6);
    assert.deepEqual(
      lines.map((l) => l.slice(file.length + 1, l.indexOf(': '))),
      ['2:3', '3:3', '4:14', '6:16', '7:3', '8:1'],
    );
    for (const line of lines) assert.ok(line.startsWith(`${file}:`), line);
    assert.equal((e.details['problems'] as SourceProblem[]).length, 6);
  });
});

describe('parseConfig: prototype safety', () => {
  const cases: Array<[string, string, number, number]> = [
    ['at the top level', `${URL_ONLY}__proto__: { polluted: yes }\n`, 2, 1],
    ['nested', `${URL_ONLY}guardrails:\n  __proto__: { polluted: yes }\n`, 3, 3],
    ['as a constructor key', `${URL_ONLY}state:\n  constructor: { polluted: yes }\n`, 3, 3],
    [
      'as a field-policy kind',
      `${URL_ONLY}guardrails: { fieldPolicy: { __proto__: { polluted: yes } } }\n`,
      2,
      30,
    ],
    [
      'as a field-policy pointer',
      `${URL_ONLY}guardrails: { fieldPolicy: { File: { prototype: report } } }\n`,
      2,
      38,
    ],
  ];
  for (const [name, text, line, col] of cases) {
    it(`rejects a forbidden key ${name}`, () => {
      const found = problems(text);
      assert.ok(found.length >= 1);
      assert.match(found[0]!.message, /^key ".*(__proto__|constructor|prototype)" is not allowed$/);
      assert.deepEqual({ line: found[0]!.line, col: found[0]!.col }, { line, col });
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
      assert.equal(Object.hasOwn(Object.prototype, 'polluted'), false);
    });
  }

  it('rejects a pointer segment that names the prototype', () => {
    assertOneProblem(
      `${URL_ONLY}guardrails: { fieldPolicy: { File: { /spec/__proto__/x: report } } }\n`,
      2,
      38,
      /must not name __proto__/,
    );
  });

  it('builds field policies as plain records', () => {
    const c = parse(
      `${URL_ONLY}guardrails: { fieldPolicy: { File: { /spec/mode: report, /spec/a~1b: revert } } }\n`,
    );
    assert.deepEqual(c.guardrails.fieldPolicy, { File: { '/spec/mode': 'report', '/spec/a~1b': 'revert' } });
    assert.equal(Object.getPrototypeOf(c.guardrails.fieldPolicy), Object.prototype);
  });
});

describe('parseConfig: the result', () => {
  it('is deep-frozen', () => {
    const c = parse(
      `${URL_ONLY}guardrails: { fieldPolicy: { File: { /spec/mode: report } } }\nalerts: [{ url: "https://h.example.org" }]\n`,
    );
    for (const part of [
      c,
      c.source,
      c.providers,
      c.guardrails,
      c.guardrails.backoff,
      c.guardrails.fieldPolicy,
      c.guardrails.fieldPolicy['File'],
      c.admin.listen,
      c.alerts,
      c.alerts[0],
      c.alerts[0]?.events,
    ]) {
      assert.ok(Object.isFrozen(part));
    }
    assert.throws(() => {
      (c.reconcile as { mode: string }).mode = 'enforce';
    }, TypeError);
  });
});

describe('docs/config.md', () => {
  const doc = readFileSync(
    join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'config.md'),
    'utf8',
  );
  const blocks = (lang: string): string[] =>
    [...doc.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1] ?? '');

  it('has a full example that parses', () => {
    const [full, smallest] = blocks('yaml');
    const c = parse(full ?? '', { readSecret: () => 'secret' });
    assert.equal(c.source.auth?.password, 'secret');
    assert.equal(c.guardrails.fieldPolicy['File']?.['/spec/mode'], 'revert');
    assert.deepEqual(parse(smallest ?? '').source.url, 'https://git.example.org/infra/desired.git');
  });

  it('shows the errors that the many-problems config really produces', () => {
    const [shown] = blocks('text');
    const text = [
      'source:',
      '  url: ssh://git.example.org/r.git',
      '  interval: 30',
      'reconcile: { mode: enforced }',
      'guardrails:',
      '  massDrift: { maxDriftedPercent: 101 }',
      '  maxActions: 3',
    ].join('\n');
    assert.throws(() => parseConfig(text, 'steward.yaml', { env: {} }), { message: shown?.trimEnd() });
  });
});

describe('loadConfig', () => {
  it('reads and validates a file, recording its absolute path', async () => {
    const path = join(dir, 'load.yaml');
    writeFileSync(
      path,
      'source:\n  url: https://g.example.org/r.git\n  auth: { username: git, passwordEnv: TOKEN }\n',
    );
    const c = await loadConfig(path, { env: { TOKEN: 't' } });
    assert.equal(c.file, path);
    assert.equal(c.source.auth?.password, 't');
  });

  it('fails with CONFIG_READ for a missing file', async () => {
    await assert.rejects(loadConfig(join(dir, 'missing.yaml')), (e: unknown) => {
      assert.ok(e instanceof StewardError);
      assert.equal(e.code, 'CONFIG_READ');
      assert.match(e.message, /cannot read config file ".*missing.yaml": ENOENT/);
      return true;
    });
  });

  it('fails with CONFIG_INVALID naming the file', async () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'source: {}\n');
    await assert.rejects(loadConfig(path), {
      code: 'CONFIG_INVALID',
      message: `${path}:1:1: missing required key "source.url"`,
    });
  });
});

describe('parseConfig: source.verify (signed desired state)', () => {
  const key =
    'ops@example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOb1uW2kTQPZC1xTvNIe2JcOUPVJlNBx5Nn1GvOx8Y9L';
  const armored =
    '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZ0000000\n-----END PGP PUBLIC KEY BLOCK-----\n';
  const src = (verify: string) => `source:\n  url: https://git.example.org/x.git\n  verify: ${verify}\n`;

  it('defaults to strict without rewrites, resolves the files relative to the config and reads them at start', () => {
    writeFileSync(join(dir, 'allowed_signers'), `# ops\n${key}\n`);
    writeFileSync(join(dir, 'ops.asc'), armored);
    const c = parse(src('{ ssh: allowed_signers, openpgp: [ops.asc] }'));
    assert.equal(c.source.verify?.mode, 'strict');
    assert.equal(c.source.verify?.allowRewrite, false);
    assert.deepEqual(c.source.verify?.ssh, { file: join(dir, 'allowed_signers'), text: `# ops\n${key}\n` });
    assert.deepEqual(
      c.source.verify?.openpgp.map((k) => k.file),
      [join(dir, 'ops.asc')],
    );
    assert.equal(parse(src('{ mode: head, ssh: allowed_signers }')).source.verify?.mode, 'head');
  });

  it('needs openpgp or ssh', () => {
    assertOneProblem(src('{ mode: head }'), 3, 3, /needs openpgp .* or ssh/);
  });

  it('reports an allowed-signers line that does not parse at its own file:line:col', () => {
    writeFileSync(join(dir, 'bad_signers'), `${key}\nops@example.org ssh-ed25519 not-base64!\n`);
    const found = problems(src('{ ssh: bad_signers }'));
    assert.ok(found.length >= 1);
    assert.equal(found[0]!.file, join(dir, 'bad_signers'));
    assert.equal(found[0]!.line, 2);
  });

  it('refuses an unreadable file and a key file that is not an armored public key', () => {
    const missing = problems(src('{ ssh: nope }'));
    assert.match(missing[0]!.message, /source\.verify\.ssh: cannot read .*nope.*ENOENT/);
    writeFileSync(join(dir, 'private.asc'), '-----BEGIN PGP PRIVATE KEY BLOCK-----\n');
    assert.match(problems(src('{ openpgp: [private.asc] }'))[0]!.message, /PRIVATE key/);
    writeFileSync(join(dir, 'garbage.asc'), 'hello');
    assert.match(
      problems(src('{ openpgp: [garbage.asc] }'))[0]!.message,
      /not an armored OpenPGP public key/,
    );
  });

  it('is null without source.verify (unverified)', () => {
    assert.equal(parse('source: { url: https://git.example.org/x.git }\n').source.verify, null);
  });
});

describe('parseConfig: agent, state backend, fleet (SPEC §11)', () => {
  const PG =
    'state:\n  backend: postgres\n  postgres: { url: "postgres://steward@db.internal/steward", passwordFile: pg-pw }\n';

  it('reads the agent identity, the postgres backend (password from its file) and the fleet keys', () => {
    const c = parse(
      `${URL_ONLY}agent: { id: web-17, labels: { role: web, zone: a } }\n${PG}` +
        'fleet:\n  rollout: { waves: [1, "30%", "100%"], bake: 90s }\n  massDrift: { maxDriftedPercent: 20 }\n',
      { readSecret: () => 'pg-s3cret\n' },
    );
    assert.deepEqual(c.agent, { id: 'web-17', labels: { role: 'web', zone: 'a' } });
    assert.deepEqual(c.state.postgres, {
      url: 'postgres://steward@db.internal/steward',
      password: 'pg-s3cret',
      poolSize: 4,
      connectTimeoutMs: 5_000,
    });
    assert.equal(c.state.backend, 'postgres');
    assert.deepEqual(c.fleet, {
      rollout: { waves: [1, '30%', '100%'], bakeMs: 90_000 },
      massDrift: { maxDriftedPercent: 20 },
      shards: null,
    });
  });

  it('rejects a password in the postgres URL, in either form, without echoing it', () => {
    for (const url of [
      'postgres://steward:hunter2@db/steward',
      'postgres://steward@db/steward?password=hunter2',
    ]) {
      const found = problems(`${URL_ONLY}state: { backend: postgres, postgres: { url: "${url}" } }\n`);
      assert.equal(found.length, 1);
      assert.match(found[0]!.message, /state\.postgres\.url: must not carry a password: .*passwordFile/);
      assert.doesNotMatch(found[0]!.message, /hunter2/);
    }
  });

  it('needs state.postgres with the postgres backend, and only then', () => {
    assert.match(
      problems(`${URL_ONLY}state: { backend: postgres }\n`)
        .map((p) => p.message)
        .join('\n'),
      /state\.postgres/,
    );
    assertOneProblem(
      `${URL_ONLY}state: { postgres: { url: "postgres://db/s" } }\n`,
      2,
      10,
      /only applies with state.backend: postgres/,
    );
  });

  it('rejects wave sizes that are not counts or percentages, shrink, or do not end at 100%', () => {
    const msgs = (waves: string) =>
      problems(`${URL_ONLY}fleet: { rollout: { waves: ${waves} } }\n`).map((p) => p.message);
    assert.match(msgs('[1, "abc", "100%"]').join('\n'), /fleet\.rollout\.waves\[1\]/);
    assert.match(msgs('[1, "130%"]').join('\n'), /fleet\.rollout\.waves\[1\]/);
    assert.match(msgs('[1, "50%"]').join('\n'), /last wave must be "100%"/);
    assert.match(msgs('["50%", "30%", "100%"]').join('\n'), /waves\[1\].*larger than the one before/);
    assert.match(msgs('[0, "100%"]').join('\n'), /waves\[0\]/);
  });

  it('rejects an agent id that is not a plain name', () => {
    assertOneProblem(`${URL_ONLY}agent: { id: "web 17" }\n`, 2, 10, /agent\.id: must be 1–128 letters/);
  });
});
