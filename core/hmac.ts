/**
 * The one HMAC-SHA256 signer and verifier, for `sha256=<hex>` headers: the
 * alerts' X-Steward-Signature and GitHub's X-Hub-Signature-256 alike. The
 * signature covers the exact body bytes; a string body is taken as UTF-8.
 */
import { nodeCrypto } from './builtins.js';

/** `sha256=` and exactly 64 hex digits, either case (the prefix too); whitespace around it is not part of it. */
const HEADER = /^sha256=([0-9a-f]{64})$/i;

const mac = (body: string | Uint8Array, secret: string): Buffer =>
  nodeCrypto().createHmac('sha256', secret).update(body).digest();

/** `sha256=<lowercase hex>`: the HMAC-SHA256 of `body` under `secret`. */
export function sign(body: string | Uint8Array, secret: string): string {
  return `sha256=${mac(body, secret).toString('hex')}`;
}

/**
 * Whether `header` is the signature of `body` under `secret`. Anything but a
 * well-formed header (missing, not a string, wrong prefix, wrong length, not
 * hex) is false, never an exception; well-formed ones are compared in
 * constant time.
 */
export function verify(body: string | Uint8Array, header: string | undefined, secret: string): boolean {
  if (typeof header !== 'string') return false;
  const hex = HEADER.exec(header.trim())?.[1];
  if (hex === undefined) return false;
  return nodeCrypto().timingSafeEqual(Buffer.from(hex, 'hex'), mac(body, secret));
}
