/**
 * What a File's desired document keeps alive while its revision is in force (issue 12: peak RSS at 100k).
 * Counted in bytes of heap after a full GC: never timed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileKind } from '../../../providers/file/kind.js';
import { heapAfterGc } from '../../helpers/heap.js';

test('a desired File document keeps its keys in the object: no property array per document', async () => {
  // 24 bytes of header + 8 per key in the object, + 32 for the `{ spec }` around it: ≈ 90 bytes; keys
  // added to a one-key literal go to a property array of their own (≈ 40 bytes more).
  const N = 50_000;
  const specs = Array.from({ length: N }, (_, i) =>
    i % 2 === 0 ? { path: 'a', content: `c${i}` } : { path: 'a', content: `c${i}`, mode: '644' },
  );
  const before = await heapAfterGc();
  const docs = specs.map((s) => fileKind.toDesired(s));
  const perDoc = ((await heapAfterGc()) - before) / N;
  assert.deepEqual(docs.slice(0, 2), [
    { spec: { ensure: 'present', content: 'c0' } },
    { spec: { ensure: 'present', content: 'c1', mode: '0644' } },
  ]);
  assert.ok(perDoc < 110, `${perDoc.toFixed(0)} bytes of heap per desired document`);
});
