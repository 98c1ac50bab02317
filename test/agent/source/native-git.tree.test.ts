/**
 * The native engine lists a revision's manifests from tree objects read through the same `git cat-file
 * --batch` that reads the blobs (issue 12: one git process per read, where `ls-tree -r` and cat-file were
 * two). Real repositories, real git; what it lists is checked against `git ls-tree -r`, in its order.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { entryType, NativeGitEngine, parseTree } from '../../../agent/source/native-git.js';
import { isolatedGitEnv } from '../../helpers/git-repo.js';

const MANIFEST = (name: string) =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: { path: etc/${name}, content: "x" }\n`;

function repo(t: { after: (fn: () => void) => void }, files: Record<string, string>, format = 'sha1') {
  const dir = mkdtempSync(join(tmpdir(), 'steward-tree-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: dir, env: isolatedGitEnv(), encoding: 'utf8' }).trim();
  git('init', '-q', '-b', 'main', `--object-format=${format}`);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  git('add', '-A');
  git('commit', '-q', '-m', 'files');
  const engine = (path: string) =>
    new NativeGitEngine({ url: dir, kind: 'local', ref: 'main', path, auth: null, cacheDir: join(dir, 'c') });
  return { dir, git, engine };
}

// Names whose order differs between a byte sort of names and git's (a folder sorts as "name/").
const TRICKY = ['a.yaml', 'a/b.yaml', 'a-b/c.yaml', 'a0.yaml', 'a/z/y.yaml', 'b c.yaml', 'é.yaml', 'Z.yaml'];

for (const format of ['sha1', 'sha256'])
  test(`a whole listing (${format}) is ls-tree -r's, in its order, from one git process`, async (t) => {
    const files = Object.fromEntries(TRICKY.map((p, i) => [`fleet/${p}`, MANIFEST(`r${i}`)]));
    files['fleet/notes.txt'] = 'not a manifest\n';
    files['outside.yaml'] = MANIFEST('outside');
    const { git, engine } = repo(t, files, format);
    const e = engine('fleet');
    const { sha } = await e.resolve();
    const before = e.stats.processes;
    const read = await e.readManifests(sha);
    assert.equal(e.stats.processes - before, 1, 'git processes to list and read a revision');
    const expected = git('-c', 'core.quotePath=false', 'ls-tree', '-r', '--name-only', 'HEAD', 'fleet')
      .split('\n')
      .filter((p) => /\.ya?ml$/.test(p));
    assert.deepEqual(
      read.files.map((f) => f.file),
      expected,
    );
    assert.deepEqual(read.problems, []);
    for (const f of read.files) assert.equal(f.oid, git('rev-parse', `HEAD:${f.file}`));
  });

test('source.path is walked folder by folder, never sent to git: a newline in it cannot ask for another object', async (t) => {
  const { git, engine } = repo(t, { 'a\nb/x.yaml': MANIFEST('nl'), 'fleet/y.yaml': MANIFEST('y') });
  const e = engine('a\nb');
  const { sha } = await e.resolve();
  assert.deepEqual(
    (await e.readManifests(sha)).files.map((f) => f.file),
    ['a\nb/x.yaml'],
  );
  // A path that would be two requests, the second a real blob's id, if written to cat-file as it is.
  const blob = git('rev-parse', 'HEAD:fleet/y.yaml');
  const injected = engine(`fleet\n${blob}`);
  const r = await injected.readManifests(sha);
  assert.deepEqual(r.files, []);
  assert.match(r.problems[0]?.message ?? '', /does not exist at/);
  // A folder that is a file, and one that is not there: the path does not exist.
  for (const path of ['fleet/y.yaml', 'nope/deeper'])
    assert.match((await engine(path).readManifests(sha)).problems[0]?.message ?? '', /does not exist at/);
});

test('a blob over the manifest limit is a problem, streamed past and not kept; the files beside it are read', async (t) => {
  const big = `# ${'x'.repeat(1024 * 1024 + 10)}\n`;
  const { engine } = repo(t, {
    'fleet/a.yaml': MANIFEST('a'),
    'fleet/big.yaml': big,
    'fleet/c.yaml': MANIFEST('c'),
  });
  const e = engine('fleet');
  const read = await e.readManifests((await e.resolve()).sha);
  assert.deepEqual(
    read.files.map((f) => f.file),
    ['fleet/a.yaml', 'fleet/c.yaml'],
  );
  assert.deepEqual(
    read.problems.map((p) => p.file),
    ['fleet/big.yaml'],
  );
  assert.match(read.problems[0]!.message, /bytes; manifests are limited to/);
});

test('parseTree reads mode, name and id of each entry, and refuses a truncated tree', () => {
  const id = Buffer.alloc(20, 0xab);
  const tree = Buffer.concat([Buffer.from('100644 a b.yaml\0'), id, Buffer.from('40000 sub\0'), id]);
  assert.deepEqual(parseTree(tree, 20), [
    { mode: '100644', name: 'a b.yaml', oid: 'ab'.repeat(20) },
    { mode: '40000', name: 'sub', oid: 'ab'.repeat(20) },
  ]);
  assert.throws(() => parseTree(tree.subarray(0, tree.length - 1), 20), /malformed tree/);
  assert.throws(() => parseTree(Buffer.from('100644 no-nul'), 20), /malformed tree/);
});

test('modes as git reads them: a zero-padded tree (040000, written by old tools) and a 100664 file are listed, as ls-tree lists them', async (t) => {
  const { dir, git, engine } = repo(t, { 'seed.txt': 'seed\n' });
  const hash = (type: string, input: Buffer) =>
    execFileSync('git', ['hash-object', '-w', '--literally', '-t', type, '--stdin'], {
      cwd: dir,
      env: isolatedGitEnv(),
      input,
    })
      .toString()
      .trim();
  const id = (hex: string) => Buffer.from(hex, 'hex');
  const a = hash('blob', Buffer.from(MANIFEST('padded')));
  const b = hash('blob', Buffer.from(MANIFEST('legacy')));
  const sub = hash('tree', Buffer.concat([Buffer.from('100644 a.yaml\0'), id(a)]));
  const fleet = hash(
    'tree',
    Buffer.concat([Buffer.from('100664 b.yaml\0'), id(b), Buffer.from('040000 sub\0'), id(sub)]),
  );
  const root = hash('tree', Buffer.concat([Buffer.from('040000 fleet\0'), id(fleet)]));
  const commit = git('commit-tree', root, '-m', 'old tools');
  git('update-ref', 'refs/heads/main', commit);
  const expected = git('ls-tree', '-r', '--name-only', 'main', 'fleet').split('\n');
  assert.deepEqual(expected, ['fleet/b.yaml', 'fleet/sub/a.yaml'], 'git itself lists both');
  const e = engine('fleet');
  const read = await e.readManifests((await e.resolve()).sha);
  assert.deepEqual(
    read.files.map((f) => f.file),
    expected,
  );
  assert.deepEqual(
    [entryType('40000'), entryType('040000'), entryType('160000'), entryType('100664')],
    ['tree', 'tree', 'commit', 'blob'],
  );
});
