import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatProblem } from '../../core/errors.js';
import { isManifestPath, parseRevision } from '../../agent/manifest.js';
import { KINDS } from '../../providers/registry.js';

const motd = (name = 'motd', path = 'etc/motd') =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: { path: ${path}, content: "hi\\n", mode: "0644" }\n`;

function problems(files: Record<string, string>): string[] {
  const r = parseRevision(
    Object.entries(files).map(([file, text]) => ({ file, text })),
    KINDS,
  );
  return r.ok ? [] : r.problems.map(formatProblem);
}

test('a valid multi-document revision parses', () => {
  const r = parseRevision([{ file: 'a.yaml', text: `${motd()}---\n${motd('b', 'etc/b')}---\n` }], KINDS);
  assert.equal(r.ok, true);
  assert.deepEqual(
    r.resources.map((x) => [x.key, x.origin]),
    [
      ['File/motd', 'a.yaml:1:1'],
      ['File/b', 'a.yaml:6:1'],
    ],
  );
  assert.deepEqual(r.resources[0]!.desired, { spec: { ensure: 'present', content: 'hi\n', mode: '0644' } });
});

test('each bad input gets a specific file:line:col message', () => {
  const cases: Array<[string, Record<string, string>, string[]]> = [
    ['malformed YAML', { 'x.yaml': 'apiVersion: steward/v1\nkind: [File\n' }, ['x.yaml:3:1: invalid YAML']],
    [
      'unknown kind',
      { 'x.yaml': motd().replace('kind: File', 'kind: Filez') },
      ['x.yaml:2:7: unknown kind "Filez"; known kinds: File'],
    ],
    [
      'unknown field',
      { 'x.yaml': `${motd().trimEnd()}\nspecc: {}\n` },
      ['x.yaml:5:1: unknown field "specc"'],
    ],
    [
      'unknown spec field',
      { 'x.yaml': motd().replace('mode:', 'mdoe:') },
      ['x.yaml:4:42: unknown field "spec.mdoe"'],
    ],
    [
      'path traversal',
      { 'x.yaml': motd('m', '../etc/passwd') },
      ['x.yaml:4:15: spec.path "../etc/passwd" must not contain ".."'],
    ],
    [
      'absolute path',
      { 'x.yaml': motd('m', '/etc/passwd') },
      ['x.yaml:4:15: spec.path "/etc/passwd" must be relative'],
    ],
    [
      'unquoted mode',
      { 'x.yaml': motd().replace('"0644"', '0644') },
      ['x.yaml:4:48: spec.mode must be a quoted octal string'],
    ],
    [
      'bad apiVersion',
      { 'x.yaml': motd().replace('steward/v1', 'v1') },
      ['x.yaml:1:13: apiVersion must be "steward/v1"'],
    ],
    [
      'missing name',
      { 'x.yaml': motd().replace('{ name: motd }', '{}') },
      ['x.yaml:3:11: metadata.name is required'],
    ],
    [
      'duplicate key in a mapping',
      { 'x.yaml': 'a: 1\na: 2\n' },
      ['x.yaml:2:1: invalid YAML: duplicated mapping key'],
    ],
    ['not a mapping', { 'x.yaml': '- 1\n' }, ['x.yaml:1:1: a manifest must be a mapping']],
  ];
  for (const [what, files, expected] of cases) {
    const got = problems(files);
    assert.equal(got.length, expected.length, `${what}: ${got.join(' | ')}`);
    for (const [i, e] of expected.entries())
      assert.ok(got[i]!.startsWith(e), `${what}: expected "${e}…", got "${got[i]}"`);
  }
});

test('duplicate (kind, name) across files names both places', () => {
  const got = problems({ 'a.yaml': motd(), 'b.yaml': motd('motd', 'etc/other') });
  assert.deepEqual(got, ['b.yaml:3:19: duplicate File/motd: already defined at a.yaml:1:1']);
});

test('two Files on the same path are rejected', () => {
  const got = problems({ 'a.yaml': motd('one'), 'b.yaml': motd('two') });
  assert.equal(got.length, 1);
  assert.match(
    got[0]!,
    /^b\.yaml:4:15: spec\.path "etc\/motd" is already managed by File\/one \(a\.yaml:1:1\)$/,
  );
});

test('every problem of a revision is reported, not only the first', () => {
  const got = problems({
    'a.yaml': motd().replace('kind: File', 'kind: Nope'),
    'b.yaml': 'x: [\n',
    'c.yaml': motd('c', '../x'),
  });
  assert.equal(got.length, 3);
});

test('empty documents are skipped; an empty revision is valid and manages nothing', () => {
  const r = parseRevision([{ file: 'a.yaml', text: '---\n---\n' }], KINDS);
  assert.equal(r.ok, true);
  assert.equal(r.resources.length, 0);
});

test('__proto__ keys are rejected and never pollute', () => {
  const got = problems({ 'a.yaml': `${motd().trimEnd()}\n__proto__: { polluted: true }\n` });
  assert.equal(got.length, 1);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
});

test('ensure: absent with content is contradictory', () => {
  const got = problems({ 'a.yaml': motd().replace('mode: "0644"', 'ensure: absent') });
  assert.equal(got.length, 1);
  assert.match(got[0]!, /spec\.content makes no sense with ensure: absent/);
});

test('manifest paths: *.yaml and *.yml under the folder only', () => {
  assert.equal(isManifestPath('fleet/a.yaml', 'fleet'), true);
  assert.equal(isManifestPath('fleet/x/b.yml', 'fleet'), true);
  assert.equal(isManifestPath('fleetish/a.yaml', 'fleet'), false);
  assert.equal(isManifestPath('fleet/readme.md', 'fleet'), false);
  assert.equal(isManifestPath('a.yaml', '.'), true);
});

test('sensitive: true is carried on the resource; a non-boolean is an error at file:line:col', () => {
  const r = parseRevision([{ file: 's.yaml', text: `${motd()}sensitive: true\n` }], KINDS);
  assert.equal(r.ok, true, r.ok ? '' : r.problems.map(formatProblem).join('\n'));
  assert.equal(r.resources[0]!.sensitive, true);
  const plain = parseRevision([{ file: 'p.yaml', text: motd() }], KINDS);
  assert.equal(plain.resources[0]!.sensitive, undefined);
  assert.deepEqual(problems({ 'b.yaml': `${motd()}sensitive: "yes"\n` }), [
    'b.yaml:5:13: sensitive must be true or false, got string "yes"',
  ]);
});

test('problems never quote file contents: no YAML snippet, no echo of a content value', () => {
  const CANARY = 'AKIA-SECRET-CANARY-yaml-77d0';
  const texts = [
    `apiVersion: steward/v1\nkind: File\nmetadata: { name: a }\nspec:\n  path: a\n  content: ${CANARY}\n    bad: indent\n`,
    `apiVersion: steward/v1\nkind: File\nmetadata: { name: a }\nspec: { path: a, content: "${CANARY}\n`,
    `a: 1\na: ${CANARY}\n`,
    `a: ${'['.repeat(70)}${CANARY}${']'.repeat(70)}\n`,
    'apiVersion: steward/v1\nkind: File\nmetadata: { name: a }\nspec: { path: a, content: 4242424242 }\n',
  ];
  for (const text of texts) {
    const out = problems({ 'x.yaml': text });
    assert.equal(out.length > 0, true, text);
    for (const p of out) {
      assert.ok(!p.includes(CANARY) && !p.includes('4242424242'), p);
      assert.ok(!p.includes('\n'), `one line: ${JSON.stringify(p)}`);
    }
  }
});
