import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffOwned } from '../../agent/diff.js';
import { fileKind } from '../../providers/file/kind.js';
import type { KindDefinition, OwnedDoc } from '../../providers/types.js';

/** A kind with a tag map and a set, like EC2's: tags are removable, the rest is not. */
const tagged: KindDefinition = {
  kind: 'Tagged',
  provider: 'none',
  validate: () => [],
  toDesired: (s) => ({ spec: { ...s } }),
  removable: (p) => p.startsWith('/spec/tags/') || p.startsWith('/spec/groups/'),
  disruptive: [],
};

const doc = (spec: Record<string, unknown>): OwnedDoc => ({ spec });

test('converged owned fields give an empty patch', () => {
  assert.deepEqual(
    diffOwned(
      fileKind,
      doc({ ensure: 'present', content: 'a' }),
      doc({ ensure: 'present', content: 'a', mode: '0600' }),
    ),
    [],
  );
});

test('fields not owned are never diffed (no phantom drift)', () => {
  const patch = diffOwned(
    tagged,
    doc({ tags: { Env: 'prod' } }),
    doc({ tags: { Env: 'prod', Owner: 'someone-else' }, extra: 1 }),
  );
  assert.deepEqual(patch, []);
});

test('a changed owned leaf is a replace', () => {
  assert.deepEqual(
    diffOwned(
      fileKind,
      doc({ ensure: 'present', content: 'new' }),
      doc({ ensure: 'present', content: 'old' }),
    ),
    [{ op: 'replace', path: '/spec/content', value: 'new' }],
  );
});

test('a missing resource reads as ensure absent: create is ordinary drift', () => {
  const patch = diffOwned(
    fileKind,
    doc({ ensure: 'present', content: 'x', mode: '0644' }),
    doc({ ensure: 'absent' }),
  );
  assert.deepEqual(
    patch.map((o) => [o.op, o.path]),
    [
      ['replace', '/spec/ensure'],
      ['add', '/spec/content'],
      ['add', '/spec/mode'],
    ],
  );
});

test('three-way: a removable field applied before and removed from Git is removed', () => {
  const last = doc({ tags: { Env: 'prod', Team: 'web' } });
  const desired = doc({ tags: { Env: 'prod' } });
  const observed = doc({ tags: { Env: 'prod', Team: 'web', Owner: 'ops' } });
  assert.deepEqual(diffOwned(tagged, desired, observed, last), [{ op: 'remove', path: '/spec/tags/Team' }]);
});

test('three-way: a field someone else set is never removed even when it shares a name pattern', () => {
  const last = doc({ tags: { Env: 'prod' } });
  const observed = doc({ tags: { Env: 'prod', Team: 'web' } });
  assert.deepEqual(diffOwned(tagged, doc({ tags: { Env: 'prod' } }), observed, last), []);
});

test('three-way: a removed field already gone from the resource needs nothing', () => {
  assert.deepEqual(
    diffOwned(
      tagged,
      doc({ tags: {} }),
      doc({ tags: { Env: 'prod' } }),
      doc({ tags: { Env: 'prod', Team: 'x' } }),
    ),
    [{ op: 'remove', path: '/spec/tags/Env' }],
  );
});

test('three-way: non-removable fields (a file mode) are released, not removed', () => {
  const last = doc({ ensure: 'present', content: 'a', mode: '0644' });
  const observed = doc({ ensure: 'present', content: 'a', mode: '0600' });
  assert.deepEqual(diffOwned(fileKind, doc({ ensure: 'present', content: 'a' }), observed, last), []);
});

test('sets normalised to keyed maps: reordering is not drift, a swap is add+remove', () => {
  const toSet = (ids: string[]) => Object.fromEntries(ids.map((i) => [i, true]));
  assert.deepEqual(
    diffOwned(tagged, doc({ groups: toSet(['a', 'b']) }), doc({ groups: toSet(['b', 'a']) })),
    [],
  );
  const patch = diffOwned(
    tagged,
    doc({ groups: toSet(['a', 'c']) }),
    doc({ groups: toSet(['a', 'b']) }),
    doc({ groups: toSet(['a', 'b']) }),
  );
  assert.deepEqual(patch.map((o) => `${o.op} ${o.path}`).sort(), [
    'add /spec/groups/c',
    'remove /spec/groups/b',
  ]);
});

test('keys with / and ~ are escaped in pointers', () => {
  const patch = diffOwned(tagged, doc({ tags: { 'a/b': '1', 'c~d': '2' } }), doc({ tags: {} }));
  assert.deepEqual(patch.map((o) => o.path).sort(), ['/spec/tags/a~1b', '/spec/tags/c~0d']);
});
