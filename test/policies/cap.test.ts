import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectWithinCap } from '../../policies/cap.js';

const items = Object.freeze([
  { key: 'File/c', firstSeen: 300 },
  { key: 'File/b', firstSeen: 100 },
  { key: 'File/a', firstSeen: 100 },
  { key: 'File/d', firstSeen: 50 },
]);

const cases: Array<{ name: string; cap: number; selected: string[]; deferred: string[] }> = [
  { name: 'cap 0 selects nothing', cap: 0, selected: [], deferred: ['File/d', 'File/a', 'File/b', 'File/c'] },
  {
    name: 'negative cap selects nothing',
    cap: -3,
    selected: [],
    deferred: ['File/d', 'File/a', 'File/b', 'File/c'],
  },
  { name: 'oldest first', cap: 1, selected: ['File/d'], deferred: ['File/a', 'File/b', 'File/c'] },
  { name: 'ties broken by key', cap: 2, selected: ['File/d', 'File/a'], deferred: ['File/b', 'File/c'] },
  {
    name: 'cap equal to the count',
    cap: 4,
    selected: ['File/d', 'File/a', 'File/b', 'File/c'],
    deferred: [],
  },
  { name: 'cap above the count', cap: 99, selected: ['File/d', 'File/a', 'File/b', 'File/c'], deferred: [] },
];

for (const c of cases) {
  test(`selectWithinCap: ${c.name}`, () => {
    const out = selectWithinCap(items, c.cap);
    assert.deepEqual(
      out.selected.map((i) => i.key),
      c.selected,
    );
    assert.deepEqual(
      out.deferred.map((i) => i.key),
      c.deferred,
    );
    assert.equal(items[0]?.key, 'File/c', 'input order untouched');
  });
}

test('selectWithinCap: key order is code-unit order, not locale order', () => {
  const out = selectWithinCap(
    [
      { key: 'b', firstSeen: 1 },
      { key: 'B', firstSeen: 1 },
      { key: 'a', firstSeen: 1 },
    ],
    3,
  );
  assert.deepEqual(
    out.selected.map((i) => i.key),
    ['B', 'a', 'b'],
  );
});

test('selectWithinCap: no resource starves behind newer drift', () => {
  // cap 1 per cycle; two new drifted resources appear every cycle, the selected one converges
  let pending = [
    { key: 'old-1', firstSeen: 0 },
    { key: 'old-2', firstSeen: 0 },
  ];
  const served: string[] = [];
  for (let cycle = 1; cycle <= 4; cycle++) {
    pending = [
      ...pending,
      { key: `new-${cycle}-a`, firstSeen: cycle },
      { key: `new-${cycle}-b`, firstSeen: cycle },
    ];
    const { selected, deferred } = selectWithinCap(pending, 1);
    served.push(...selected.map((s) => s.key));
    pending = deferred;
  }
  assert.deepEqual(served, ['old-1', 'old-2', 'new-1-a', 'new-1-b']);
});
