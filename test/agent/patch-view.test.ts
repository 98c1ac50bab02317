import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { Operation } from 'fast-json-patch';
import {
  clearDiffCache,
  DIFF_CACHE_CHARS,
  DIFF_CONTEXT,
  diffCacheStats,
  displayPatch,
  lineDiff,
} from '../../agent/patch-view.js';

const CANARY = 'AKIA-SECRET-CANARY-unit-4b1e';
const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const lines = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => `${tag}-${i + 1}`).join('\n') + '\n';
const CONTENT = ['/spec/content'];

test('a content replace shows a line diff and digests, never the whole value', () => {
  const before = lines(20, 'keep');
  const after = before.replace('keep-10\n', `changed ${CANARY}\n`);
  const ops: Operation[] = [{ op: 'replace', path: '/spec/content', value: after }];
  const view = displayPatch(ops, {
    contentFields: CONTENT,
    sensitive: false,
    observed: { spec: { ensure: 'present', content: before } },
  });
  assert.deepEqual(view, [
    {
      op: 'replace',
      path: '/spec/content',
      diff: '@@ -8,5 +8,5 @@\n keep-8\n keep-9\n-keep-10\n+changed AKIA-SECRET-CANARY-unit-4b1e\n keep-11\n keep-12\n',
      before: { sha256: sha(before), bytes: Buffer.byteLength(before) },
      after: { sha256: sha(after), bytes: Buffer.byteLength(after) },
    },
  ]);
  assert.equal(DIFF_CONTEXT, 2);
  assert.ok(!JSON.stringify(view).includes('keep-1\\n'), 'unchanged lines beyond the context are not shown');
  assert.equal(ops[0]!.op === 'replace' && ops[0]!.value, after, 'the real patch is left as it was');
});

test('a sensitive resource shows digests only: no diff, no value, on any field', () => {
  const ops: Operation[] = [
    { op: 'replace', path: '/spec/content', value: `token=${CANARY}\n` },
    { op: 'replace', path: '/spec/mode', value: '0600' },
  ];
  const view = displayPatch(ops, {
    contentFields: CONTENT,
    sensitive: true,
    observed: { spec: { ensure: 'present', content: 'token=old\n', mode: '0644' } },
  });
  assert.ok(!JSON.stringify(view).includes(CANARY));
  assert.deepEqual(view, [
    {
      op: 'replace',
      path: '/spec/content',
      before: { sha256: sha('token=old\n'), bytes: 10 },
      after: { sha256: sha(`token=${CANARY}\n`), bytes: CANARY.length + 7 },
    },
    {
      op: 'replace',
      path: '/spec/mode',
      before: { sha256: sha('0644'), bytes: 4 },
      after: { sha256: sha('0600'), bytes: 4 },
    },
  ]);
});

test('creating a file: before is null and the diff adds every line; other fields keep their value', () => {
  const view = displayPatch(
    [
      { op: 'replace', path: '/spec/ensure', value: 'present' },
      { op: 'add', path: '/spec/content', value: 'a\nb\n' },
    ],
    { contentFields: CONTENT, sensitive: false, observed: { spec: { ensure: 'absent' } } },
  );
  assert.deepEqual(view, [
    { op: 'replace', path: '/spec/ensure', value: 'present' },
    {
      op: 'add',
      path: '/spec/content',
      diff: '@@ -0,0 +1,2 @@\n+a\n+b\n',
      before: null,
      after: { sha256: sha('a\nb\n'), bytes: 4 },
    },
  ]);
});

test('content nested in the value of a parent op is replaced by its digest', () => {
  const view = displayPatch([{ op: 'add', path: '/spec', value: { ensure: 'present', content: CANARY } }], {
    contentFields: CONTENT,
    sensitive: false,
    observed: { spec: {} },
  });
  assert.deepEqual(view, [
    {
      op: 'add',
      path: '/spec',
      value: { ensure: 'present', content: { sha256: sha(CANARY), bytes: CANARY.length } },
    },
  ]);
});

test('removing content shows the old digest only; non-content removes are unchanged', () => {
  const view = displayPatch(
    [
      { op: 'remove', path: '/spec/content' },
      { op: 'remove', path: '/spec/tags/Team' },
    ],
    {
      contentFields: CONTENT,
      sensitive: false,
      observed: { spec: { content: CANARY, tags: { Team: 'x' } } },
    },
  );
  assert.deepEqual(view, [
    {
      op: 'remove',
      path: '/spec/content',
      before: { sha256: sha(CANARY), bytes: CANARY.length },
      after: null,
    },
    { op: 'remove', path: '/spec/tags/Team' },
  ]);
});

test('a diff too large to compute is left out; the digests stay', () => {
  const a = lines(5000, 'a');
  const b = lines(5000, 'b');
  assert.equal(lineDiff(a, b), undefined);
  const [op] = displayPatch([{ op: 'replace', path: '/spec/content', value: b }], {
    contentFields: CONTENT,
    sensitive: false,
    observed: { spec: { content: a } },
  });
  assert.deepEqual(Object.keys(op!).sort(), ['after', 'before', 'op', 'path']);
});

test('digests are the sha256 of the UTF-8 bytes (what sha256sum prints), across block sizes and for JSON values', () => {
  // Hashed in JavaScript, not node:crypto (agent/patch-view.ts): the same digest, at each padding boundary.
  const values: unknown[] = ['', 'é€😀'];
  for (const n of [55, 56, 63, 64, 65, 119, 120, 1000, 300_000]) values.push('x'.repeat(n));
  values.push({ a: [1, 'ü'] }, 42);
  for (const v of values) {
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    const ops: Operation[] = [{ op: 'replace', path: '/spec/content', value: v }];
    const [op] = displayPatch(ops, {
      contentFields: ['/spec/content'],
      sensitive: true,
      observed: { spec: { content: 'old' } },
    });
    assert.deepEqual(
      (op as { after: unknown }).after,
      { sha256: sha(text), bytes: Buffer.byteLength(text) },
      `${text.length} chars`,
    );
  }
});

test('the display diffs are cached by both sides’ digests, least recently used out first, within DIFF_CACHE_CHARS', () => {
  clearDiffCache();
  const observed = { spec: { content: 'x' } };
  const view = (before: string, after: string) =>
    displayPatch([{ op: 'replace', path: '/spec/content', value: after }], {
      contentFields: ['/spec/content'],
      sensitive: false,
      observed: { spec: { ...observed.spec, content: before } },
    });
  // Diffs of about 14 K characters each (every one of 90 lines changed: 180 edits, within MAX_EDIT_LENGTH),
  // all different: many more than the bound holds.
  const lines = (tag: string) =>
    Array.from({ length: 90 }, (_, i) => `${tag} ${i} ${'x'.repeat(70)}`).join('\n');
  const first = view(lines('a0'), lines('b0'));
  const held = diffCacheStats();
  assert.equal(held.entries, 1);
  assert.ok(held.chars > 10_000, `one diff of ${held.chars} characters`);
  assert.deepEqual(view(lines('a0'), lines('b0')), first, 'the same sides: the cached diff');
  let i = 1;
  while (diffCacheStats().chars + held.chars <= DIFF_CACHE_CHARS) {
    view(lines(`a${i}`), lines(`b${i}`));
    i++;
  }
  view(lines('a0'), lines('b0')); // used again: most recent, kept
  for (let j = 0; j < 50; j++, i++) view(lines(`a${i}`), lines(`b${i}`));
  const after = diffCacheStats();
  assert.ok(after.chars <= DIFF_CACHE_CHARS, `${after.chars} characters held`);
  assert.ok(after.entries < i, `${after.entries} of ${i} diffs held: the oldest went`);
  const before = diffCacheStats().entries;
  assert.deepEqual(view(lines('a0'), lines('b0')), first);
  assert.equal(diffCacheStats().entries, before, 'a0 → b0 was still held: no entry added');
  clearDiffCache();
  assert.deepEqual(diffCacheStats(), { entries: 0, chars: 0 });
});
