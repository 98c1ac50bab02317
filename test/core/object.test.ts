import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sameJson } from '../../core/object.js';

test('sameJson: members in any order, arrays in order, nested', () => {
  assert.equal(sameJson({ a: 1, b: { c: [1, 'x'] } }, { b: { c: [1, 'x'] }, a: 1 }), true);
  assert.equal(sameJson({ l: [1, 2] }, { l: [2, 1] }), false);
  assert.equal(sameJson({ a: 1 }, { a: 1, b: 2 }), false);
  assert.equal(sameJson({ a: 1, b: 2 }, { a: 1 }), false);
  assert.equal(sameJson({ a: null }, { a: null }), true);
  assert.equal(sameJson({ a: {} }, { a: [] }), false);
  assert.equal(sameJson({ n: 1 }, { n: '1' }), false);
});

test('sameJson: false for what it cannot vouch for (toJSON, an undefined member on one side)', () => {
  const j = { toJSON: () => 1 };
  assert.equal(sameJson({ a: j }, { a: j }), true); // the same object
  assert.equal(sameJson({ a: { toJSON: () => 1 } }, { a: { toJSON: () => 1 } }), false);
  assert.equal(sameJson({ a: 1, b: undefined }, { a: 1 }), false);
});
