import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detect, ownedFieldsMatch } from '../../agent/detect.js';
import { diffOwned } from '../../agent/diff.js';
import type {
  DesiredResource,
  KindDefinition,
  ObserveResult,
  OwnedDoc,
  Provider,
} from '../../providers/types.js';

// In-process fakes for pure logic: detect only asks the kind for its provider and removable paths.
const kind = { kind: 'T', provider: 'p', removable: () => true } as unknown as KindDefinition;
const kinds = new Map([['T', kind]]);

const cases: Array<[string, OwnedDoc, unknown]> = [
  ['equal', { spec: { a: 'x', b: 1 } }, { spec: { a: 'x', b: 1 } }],
  ['extra observed field (not owned)', { spec: { a: 'x' } }, { spec: { a: 'x', z: 2 } }],
  ['different leaf', { spec: { a: 'x' } }, { spec: { a: 'y' } }],
  ['missing leaf', { spec: { a: 'x', b: 1 } }, { spec: { a: 'x' } }],
  ['equal arrays', { spec: { l: [1, { k: 'v' }] } }, { spec: { l: [1, { k: 'v' }] } }],
  ['array of other length', { spec: { l: [1, 2] } }, { spec: { l: [1] } }],
  [
    'object in an array with an extra key',
    { spec: { l: [{ k: 'v' }] } },
    { spec: { l: [{ k: 'v', x: 1 }] } },
  ],
  ['array where an object is desired', { spec: { o: { k: 1 } } }, { spec: { o: [1] } }],
  ['object where a string is desired', { spec: { a: 'x' } }, { spec: { a: { x: 1 } } }],
  ['null leaf', { spec: { a: null } }, { spec: { a: null } }],
  ['null vs object', { spec: { o: { k: 1 } } }, { spec: { o: null } }],
  ['observed not an object', { spec: { a: 'x' } }, 'x'],
  ['number vs string', { spec: { n: 1 } }, { spec: { n: '1' } }],
];

for (const [name, desired, observed] of cases)
  test(`ownedFieldsMatch agrees with the owned-field diff: ${name}`, () => {
    const empty = diffOwned(kind, desired, observed as OwnedDoc).length === 0;
    // Never "match" where the diff finds drift (that would hide drift); here it also finds every match.
    assert.equal(ownedFieldsMatch(desired, observed), empty);
  });

const resource = (name: string, desired: OwnedDoc): DesiredResource => ({
  key: `T/${name}`,
  kind: 'T',
  name,
  spec: {},
  desired,
  origin: 'x.yaml:1:1',
});

function provider(observed: Record<string, OwnedDoc>): Provider {
  return {
    name: 'p',
    kinds: [kind],
    observe: async (rs) =>
      new Map(
        rs.map((r): [string, ObserveResult] => [
          r.key,
          { status: 'present', id: r.name, doc: observed[r.name]! },
        ]),
      ),
    apply: async () => [],
  };
}

test('detect: a leaf applied before and no longer in Git is drift (a removal), though Git’s leaves match', async () => {
  const desired = { spec: { a: 'x' } };
  const r = resource('one', desired);
  const d = await detect(
    [r],
    kinds,
    new Map([['p', provider({ one: { spec: { a: 'x', gone: 1 } } })]]),
    () => ({
      spec: { a: 'x', gone: 1 },
    }),
  );
  assert.equal(d.converged.length, 0);
  assert.deepEqual(d.drift[0]!.patch, [{ op: 'remove', path: '/spec/gone' }]);
});

test('detect: converged, drifted and unobservable resources, in revision order', async () => {
  const rs = [
    resource('a', { spec: { v: 1 } }),
    resource('b', { spec: { v: 2 } }),
    resource('c', { spec: { v: 3 } }),
  ];
  const p: Provider = {
    ...provider({ a: { spec: { v: 1 } }, b: { spec: { v: 9 } } }),
    observe: async (all) =>
      new Map(
        all
          .filter((r) => r.name !== 'c')
          .map((r): [string, ObserveResult] => [
            r.key,
            { status: 'present', id: r.name, doc: { spec: { v: r.name === 'a' ? 1 : 9 } } },
          ]),
      ),
  };
  const d = await detect(rs, kinds, new Map([['p', p]]), () => undefined);
  assert.equal(d.managed, 3);
  assert.deepEqual(
    d.converged.map((r) => r.name),
    ['a'],
  );
  assert.deepEqual(
    d.drift.map((x) => [x.resource.name, x.patch]),
    [['b', [{ op: 'replace', path: '/spec/v', value: 2 }]]],
  );
  assert.deepEqual(
    d.errors.map((e) => [e.resource.name, e.code]),
    [['c', 'OBSERVE_FAILED']],
  );
});

test('detect: a provider with observeBatch is asked that many at a time, each batch diffed before the next is read', async () => {
  const names = ['a', 'b', 'c', 'd', 'e'];
  const rs = names.map((n, i) => resource(n, { spec: { v: i } }));
  const log: string[] = [];
  const observed = (n: string, i: number): OwnedDoc => ({ spec: { v: n === 'd' ? 99 : i } });
  const p: Provider = {
    ...provider({}),
    observeBatch: 2,
    observe: async (batch) => {
      log.push(`observe ${batch.map((r) => r.name).join(',')}`);
      if (batch.some((r) => r.name === 'c')) throw new Error('throttled');
      return new Map(
        batch.map((r): [string, ObserveResult] => [
          r.key,
          { status: 'present', id: r.name, doc: observed(r.name, names.indexOf(r.name)) },
        ]),
      );
    },
  };
  const d = await detect(rs, kinds, new Map([['p', p]]), (key) => {
    log.push(`diff ${key.slice(2)}`);
    return undefined;
  });
  // The observed documents of one batch are all that is alive at once: the next is read after they were diffed.
  assert.deepEqual(log, ['observe a,b', 'diff a', 'diff b', 'observe c,d', 'observe e', 'diff e']);
  assert.equal(d.managed, 5);
  assert.deepEqual(
    d.converged.map((r) => r.name),
    ['a', 'b', 'e'],
  );
  // A batch that fails is an observe error for its own resources only, never "missing".
  assert.deepEqual(
    d.errors.map((e) => [e.resource.name, e.code]),
    [
      ['c', 'OBSERVE_FAILED'],
      ['d', 'OBSERVE_FAILED'],
    ],
  );
  assert.deepEqual(d.drift, []);
});

test('detect: a provider without observeBatch is asked once for all its resources (API call counts as before)', async () => {
  const rs = ['a', 'b', 'c'].map((n) => resource(n, { spec: { v: 1 } }));
  const calls: number[] = [];
  const p: Provider = {
    ...provider({ a: { spec: { v: 1 } }, b: { spec: { v: 1 } }, c: { spec: { v: 2 } } }),
  };
  const observe = p.observe;
  p.observe = (batch) => {
    calls.push(batch.length);
    return observe(batch);
  };
  const d = await detect(rs, kinds, new Map([['p', p]]), () => undefined);
  assert.deepEqual(calls, [3]);
  assert.deepEqual(
    d.drift.map((x) => x.resource.name),
    ['c'],
  );
});

test('detect: a three-way base equal to the desired document but not shared (loaded after a restart) is compared, not diffed', async () => {
  const rs = ['a', 'b', 'c'].map((n) => resource(n, { spec: { v: n, nested: { k: [1, 2] } } }));
  // Counts lookups of the kind: one per resource to find its provider, one more for each owned-field diff.
  let lookups = 0;
  const counted = new Map(kinds);
  const get = counted.get.bind(counted);
  counted.get = (k) => {
    lookups++;
    return get(k);
  };
  const docs = Object.fromEntries(rs.map((r) => [r.name, structuredClone(r.desired)]));
  const copies = new Map(rs.map((r) => [r.key, structuredClone(r.desired)]));
  const d = await detect(rs, counted, new Map([['p', provider(docs)]]), (k) => copies.get(k));
  assert.deepEqual(
    d.converged.map((r) => r.name),
    ['a', 'b', 'c'],
  );
  assert.equal(lookups, 3, 'no owned-field diff (projection and patch) for a base equal to Git');
});
