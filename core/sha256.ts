/**
 * SHA-256 of bytes, as hex: what `sha256sum` prints. Small inputs, while nothing has loaded node:crypto, are
 * hashed in JavaScript (@noble/hashes, bundled): loading node:crypto (every cipher, WebCrypto) costs 5–8 ms on
 * Node 24, more than a plan's few display digests (issue 12). Anything larger than {@link SMALL_BYTES}, or any
 * input once node:crypto is loaded (a daemon loads it at start), goes to node:crypto, which hashes several
 * times faster once warm. Both give the same digest (test/core/sha256.test.ts).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { nodeCrypto } from './builtins.js';

/** Past this, hashing in JavaScript costs more than loading node:crypto (measured cold on Node 24: 64 KiB ≈ 4 ms). */
export const SMALL_BYTES = 64 * 1024;

export function sha256Hex(data: Uint8Array): string {
  if (nodeCrypto.loaded || data.byteLength > SMALL_BYTES)
    return nodeCrypto().createHash('sha256').update(data).digest('hex');
  return bytesToHex(sha256(data));
}
