/**
 * core/sha256.ts: the same digest as node:crypto whichever way it hashes — in JavaScript while node:crypto is
 * not loaded and the input is small, with node:crypto otherwise — and node:crypto is loaded only for a large
 * input.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { nodeCrypto } from '../../core/builtins.js';
import { SMALL_BYTES, sha256Hex } from '../../core/sha256.js';

const expected = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const inputs = [0, 1, 55, 56, 63, 64, 65, 1000, SMALL_BYTES].map((n) => Buffer.alloc(n, n % 251));

test('small inputs are hashed without node:crypto; a large one loads it; every digest is sha256sum’s', () => {
  // (the test's own import of node:crypto is not steward's: core/builtins.ts counts only what it loaded)
  assert.equal(
    nodeCrypto.loaded,
    false,
    'nothing in this process has asked core/builtins for node:crypto yet',
  );
  for (const b of inputs) assert.equal(sha256Hex(b), expected(b), `${b.length} bytes`);
  assert.equal(nodeCrypto.loaded, false, `inputs up to ${SMALL_BYTES} bytes hash in JavaScript`);
  const large = Buffer.alloc(SMALL_BYTES + 1, 7);
  assert.equal(sha256Hex(large), expected(large));
  assert.equal(nodeCrypto.loaded, true, 'a larger input goes to node:crypto');
  for (const b of inputs) assert.equal(sha256Hex(b), expected(b), `${b.length} bytes, node:crypto loaded`);
});
