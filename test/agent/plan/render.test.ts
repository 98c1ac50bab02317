import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  colourWanted,
  type PlanContext,
  renderJson,
  renderMarkdown,
  renderText,
  summaryLine,
} from '../../../agent/plan/render.js';
import type { PlanReport, PlanResource } from '../../../agent/plan/report.js';

const digest = (c: string, bytes: number) => ({ sha256: c.repeat(64), bytes });

/** One resource of each action, a hold the renderer has no hint for (`lease`), and an unreadable one. */
function fixture(): PlanReport {
  const resources: PlanResource[] = [
    {
      kind: 'File',
      name: 'motd',
      id: 'etc/motd',
      patch: [],
      sensitive: false,
      change: 'create',
      action: 'create',
      held: null,
      changes: [
        {
          op: 'replace',
          path: '/spec/ensure',
          field: 'spec.ensure',
          before: 'absent',
          after: 'present',
          reportOnly: false,
        },
        {
          op: 'add',
          path: '/spec/content',
          field: 'spec.content',
          digests: { before: null, after: digest('a', 6) },
          diff: '@@ -0,0 +1,1 @@\n+hello\n',
          reportOnly: false,
        },
        { op: 'add', path: '/spec/mode', field: 'spec.mode', after: '0644', reportOnly: false },
      ],
    },
    {
      kind: 'SecurityGroup',
      name: 'web-sg',
      id: 'sg-0123',
      patch: [],
      sensitive: false,
      change: 'update',
      action: 'update',
      held: 'frozen',
      changes: [
        {
          op: 'replace',
          path: '/spec/ingress/0/cidr',
          field: 'spec.ingress[0].cidr',
          before: '0.0.0.0/0',
          after: '10.0.0.0/8',
          reportOnly: false,
        },
        { op: 'remove', path: '/spec/tags/Owner', field: 'spec.tags.Owner', before: 'bob', reportOnly: true },
      ],
    },
    {
      kind: 'File',
      name: 'hosts',
      id: 'etc/hosts',
      patch: [],
      sensitive: false,
      change: 'update',
      action: 'report-only',
      held: null,
      changes: [
        {
          op: 'replace',
          path: '/spec/mode',
          field: 'spec.mode',
          before: '0600',
          after: '0644',
          reportOnly: true,
        },
      ],
    },
    {
      kind: 'File',
      name: 'secret',
      id: 'secret.env',
      patch: [],
      sensitive: true,
      change: 'update',
      action: 'update',
      held: 'lease',
      changes: [
        {
          op: 'replace',
          path: '/spec/content',
          field: 'spec.content',
          digests: { before: digest('b', 9), after: digest('c', 12) },
          reportOnly: false,
        },
      ],
    },
  ];
  return {
    managed: 6,
    mode: 'enforce',
    frozen: true,
    soaking: false,
    wouldFreeze: null,
    resources,
    errors: [
      {
        kind: 'File',
        name: 'locked',
        id: 'locked',
        code: 'OBSERVE_FAILED',
        error: 'EACCES: permission denied',
      },
    ],
    summary: {
      create: 1,
      update: 2,
      delete: 0,
      reportOnly: 1,
      held: { frozen: 1, lease: 1 },
      unreadable: 1,
    },
    exitCode: 1,
  };
}

const ctx: PlanContext = {
  revision: '0123456789abcdef0123456789abcdef01234567',
  target: 'source.ref main',
  signer: null,
  verified: null,
  state: { from: 'state-dir', path: '/var/lib/steward/state.json' },
};

const ESC = '\x1b';
const strip = (s: string): string =>
  s
    .split(ESC)
    .map((part, i) => (i === 0 ? part : part.replace(/^\[[0-9;]*m/, '')))
    .join('');

const TEXT = [
  'revision 0123456789ab (source.ref main): 6 managed, 4 drifted, 1 unreadable',
  'unverified (no source.verify in the config)',
  'state: /var/lib/steward/state.json (read only): mode enforce, frozen',
  '',
  '+ File/motd (etc/motd): create',
  '    + spec.mode: "0644"',
  '    + spec.content: sha256:aaaaaaaaaaaa (6 bytes)',
  '        @@ -0,0 +1,1 @@',
  '        +hello',
  '',
  '~ SecurityGroup/web-sg (sg-0123): update, held: frozen',
  '    ~ spec.ingress[0].cidr: "0.0.0.0/0" → "10.0.0.0/8"',
  '    - spec.tags.Owner: "bob"  (report only)',
  '',
  '# File/hosts (etc/hosts): report only (never reverted)',
  '    ~ spec.mode: "0600" → "0644"',
  '',
  '~ File/secret (secret.env): update, held: lease',
  '    ~ spec.content: sha256:bbbbbbbbbbbb (9 bytes) → sha256:cccccccccccc (12 bytes) (sensitive: digests only)',
  '',
  '! File/locked (locked): cannot be read: EACCES: permission denied',
  '',
  'Plan: 1 to create, 2 to update, 1 report only; 2 held (1 frozen, 1 lease); 1 unreadable.',
  'held (frozen): the agent is frozen; `steward unfreeze` (or POST /v1/unfreeze) lifts it',
];

test('text without colour: golden (create, update held, report only, a hold reason the renderer does not know)', () => {
  assert.deepEqual(renderText(fixture(), ctx, false), TEXT);
});

test('text with colour: the same text, styled by action and by diff line', () => {
  const lines = renderText(fixture(), ctx, true);
  assert.deepEqual(lines.map(strip), TEXT, 'colour changes no character');
  const at = (prefix: string) => lines.find((l) => strip(l).startsWith(prefix))!;
  assert.equal(at('+ File/motd'), '\x1b[1m\x1b[32m+ File/motd (etc/motd): create\x1b[0m\x1b[0m');
  assert.ok(at('~ SecurityGroup').startsWith(`${ESC}[1m${ESC}[33m~ SecurityGroup`));
  assert.ok(at('# File/hosts').startsWith(`${ESC}[1m${ESC}[36m# File/hosts`));
  assert.equal(at('        +hello'), '        \x1b[32m+hello\x1b[0m');
  assert.equal(at('        @@'), '        \x1b[36m@@ -0,0 +1,1 @@\x1b[0m');
  assert.ok(at('! File/locked').startsWith(`${ESC}[31m`));
  assert.ok(
    renderText(fixture(), ctx, false).every((l) => !l.includes('\x1b')),
    'no ANSI without colour',
  );
});

test('markdown for a pull-request comment: golden, no ANSI, diffs in fences', () => {
  assert.deepEqual(renderMarkdown(fixture(), ctx), [
    '### steward plan: `0123456789ab` (source.ref main)',
    '',
    '**Plan: 1 to create, 2 to update, 1 report only; 2 held (1 frozen, 1 lease); 1 unreadable.**',
    '',
    '- unverified (no source.verify in the config)',
    '- state: /var/lib/steward/state.json (read only): mode enforce, frozen',
    '',
    '| | resource | action | held |',
    '|---|---|---|---|',
    '| `+` | `File/motd (etc/motd)` | create |  |',
    '| `~` | `SecurityGroup/web-sg (sg-0123)` | update | frozen |',
    '| `#` | `File/hosts (etc/hosts)` | report only |  |',
    '| `~` | `File/secret (secret.env)` | update | lease |',
    '| `!` | `File/locked (locked)` | unreadable: EACCES: permission denied | |',
    '',
    '#### `File/motd (etc/motd)`: create',
    '',
    '```diff',
    '+ spec.mode: "0644"',
    '  spec.content: sha256:aaaaaaaaaaaa (6 bytes)',
    '@@ -0,0 +1,1 @@',
    '+hello',
    '```',
    '',
    '#### `SecurityGroup/web-sg (sg-0123)`: update, held: frozen',
    '',
    '```diff',
    '- spec.ingress[0].cidr: "0.0.0.0/0"',
    '+ spec.ingress[0].cidr: "10.0.0.0/8"',
    '- spec.tags.Owner: "bob"  # report only',
    '```',
    '',
    '#### `File/hosts (etc/hosts)`: report only (never reverted)',
    '',
    '```diff',
    '- spec.mode: "0600"',
    '+ spec.mode: "0644"',
    '```',
    '',
    '#### `File/secret (secret.env)`: update, held: lease',
    '',
    '```diff',
    '  spec.content: sha256:bbbbbbbbbbbb (9 bytes) → sha256:cccccccccccc (12 bytes) (sensitive: digests only)',
    '```',
    '',
    '- held (frozen): the agent is frozen; `steward unfreeze` (or POST /v1/unfreeze) lifts it',
  ]);
});

test('markdown: a file diff with a ``` in it gets a longer fence; a | in a name cannot break the table', () => {
  const report = fixture();
  report.resources[0]!.changes[1]!.diff = '@@ -0,0 +1,1 @@\n+```sh\n';
  report.resources[0]!.id = 'a|b';
  const md = renderMarkdown(report, ctx);
  assert.ok(md.includes('````diff') && md.includes('+```sh'), md.join('\n'));
  assert.ok(md.includes('| `+` | `File/motd (a\\|b)` | create |  |'), md.join('\n'));
});

test('the summary line', () => {
  const r = fixture();
  assert.equal(
    summaryLine(r),
    'Plan: 1 to create, 2 to update, 1 report only; 2 held (1 frozen, 1 lease); 1 unreadable.',
  );
  r.summary = { create: 2, update: 3, delete: 1, reportOnly: 1, held: { frozen: 2 }, unreadable: 0 };
  assert.equal(
    summaryLine(r),
    'Plan: 2 to create, 3 to update, 1 to delete, 1 report only; 2 held (frozen).',
  );
  r.summary = { create: 0, update: 0, delete: 0, reportOnly: 0, held: {}, unreadable: 0 };
  assert.equal(summaryLine(r), 'Plan: 0 to create, 0 to update.');
});

test('json keeps the keys plan --json always had and adds the plan', () => {
  const json = JSON.parse(renderJson(fixture(), ctx)) as Record<string, unknown> & { drift: object[] };
  for (const k of ['revision', 'signer', 'verified', 'managed', 'drifted', 'drift', 'errors'])
    assert.ok(k in json, k);
  assert.equal(json['drifted'], 4);
  assert.deepEqual(Object.keys(json.drift[1]!), [
    'kind',
    'name',
    'id',
    'patch',
    'change',
    'action',
    'held',
    'sensitive',
    'changes',
  ]);
  assert.deepEqual((json.drift[1] as { held: string }).held, 'frozen');
  assert.equal(json['exitCode'], 1);
});

test('colour: --no-color, then NO_COLOR, then FORCE_COLOR, then the terminal', () => {
  const cases: Array<[Parameters<typeof colourWanted>[0], boolean]> = [
    [{ noColor: false, isTTY: true, env: {} }, true],
    [{ noColor: false, isTTY: false, env: {} }, false],
    [{ noColor: true, isTTY: true, env: {} }, false],
    [{ noColor: false, isTTY: true, env: { NO_COLOR: '1' } }, false],
    [{ noColor: false, isTTY: true, env: { NO_COLOR: '' } }, true],
    [{ noColor: false, isTTY: false, env: { FORCE_COLOR: '1' } }, true],
    [{ noColor: false, isTTY: true, env: { FORCE_COLOR: '0' } }, false],
    [{ noColor: false, isTTY: false, env: { FORCE_COLOR: '1', NO_COLOR: '1' } }, false],
    [{ noColor: true, isTTY: false, env: { FORCE_COLOR: '1' } }, false],
  ];
  for (const [input, want] of cases) assert.equal(colourWanted(input), want, JSON.stringify(input));
});

test('nothing drifted: says so; a working tree is named as such; a known hold reason gets its hint', () => {
  const empty: PlanReport = {
    ...fixture(),
    resources: [],
    errors: [],
    summary: { create: 0, update: 0, delete: 0, reportOnly: 0, held: {}, unreadable: 0 },
    exitCode: 0,
  };
  const dir: PlanContext = { ...ctx, revision: null, target: 'working tree ./desired' };
  const text = renderText(empty, dir, false);
  assert.equal(text[0], 'working tree ./desired: 6 managed, 0 drifted, 0 unreadable');
  assert.ok(text.includes('No changes: every managed resource matches the revision.'), text.join('\n'));
  assert.equal(renderMarkdown(empty, dir)[0], '### steward plan: working tree ./desired');
  const windowed = fixture();
  windowed.resources[3]!.held = 'window';
  windowed.summary.held = { frozen: 1, window: 1 };
  assert.ok(renderText(windowed, ctx, false).some((l) => /^held \(window\): .*deny window/.test(l)));
});

// biome-ignore lint/suspicious/noControlCharactersInRegex: the renderer's own styles
const STYLES = /\x1b\[[0-9;]*m/g;

test('text: control characters in a content diff, a value or an error are escaped, colour or not', () => {
  // The drifted content on the host is the attacker's: `steward plan` must not let it steer the terminal.
  const report = fixture();
  report.resources[0]!.changes[1]!.diff = '@@ -0,0 +1,1 @@\n+\x1b]0;pwned\x07\x1b[2J\rhidden\x9b31m\n';
  report.resources[0]!.changes[2]!.after = 'x\x9b2J';
  report.errors[0]!.error = 'EACCES \x1b[2J';
  for (const colour of [false, true]) {
    const text = renderText(report, ctx, colour).join('\n').replace(STYLES, '');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: none may be left
    assert.doesNotMatch(text, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/, JSON.stringify(text));
    assert.ok(text.includes('pwned'), 'shown, escaped');
  }
});
