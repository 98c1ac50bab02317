/**
 * OpenPGP commit signatures, verified with openpgp.js.
 *
 * git signs the exact bytes of the commit without its signature header with a
 * detached signature, so the message is a BINARY message of those bytes (never
 * a text message: that would canonicalise line endings).
 *
 * Time: openpgp.js checks that the key was valid when the signature was made
 * (the signature's own, signed creation time) and that the signature is not
 * from after `at`; steward also requires the signing key to be valid — not
 * expired, not revoked — at `at` (the time of verification), so a retired or
 * compromised key cannot sign backdated commits.
 */
import * as openpgp from 'openpgp';
import type { SourceProblem } from '../../../core/errors.js';

export type OpenPgpKey = openpgp.PublicKey;

/** Reads the armored public keys of one file. Private keys are refused (give `gpg --export --armor`). */
export async function readOpenPgpKeys(
  armored: string,
  file: string,
): Promise<{ keys: OpenPgpKey[]; problems: SourceProblem[] }> {
  const problem = (message: string): { keys: OpenPgpKey[]; problems: SourceProblem[] } => ({
    keys: [],
    problems: [{ file, line: 1, col: 1, message }],
  });
  let keys: openpgp.Key[];
  try {
    keys = await openpgp.readKeys({ armoredKeys: armored });
  } catch (e) {
    return problem(
      `not an armored OpenPGP public key (${(e as Error).message}); export one with gpg --export --armor <fingerprint>`,
    );
  }
  if (keys.some((k) => k.isPrivate()))
    return problem('holds a PRIVATE key: give the public key only (gpg --export --armor <fingerprint>)');
  return { keys: keys as OpenPgpKey[], problems: [] };
}

export type OpenPgpResult =
  | { ok: true; fingerprint: string; keyId: string }
  | {
      ok: false;
      reason: 'unknown-key' | 'bad-signature' | 'expired-key' | 'revoked-key';
      keyId: string | null;
      fingerprint: string | null;
      detail: string;
    };

const hexId = (id: openpgp.KeyID): string => id.toHex().toUpperCase();

/** Why `key`'s signing (sub)key `keyId` is not usable at `at`, or null when it is. */
async function keyStatus(
  key: OpenPgpKey,
  keyId: openpgp.KeyID,
  at: Date,
): Promise<{ reason: 'expired-key' | 'revoked-key' | 'bad-signature'; detail: string } | null> {
  try {
    await key.getSigningKey(keyId, at);
    return null;
  } catch (e) {
    const sub = key.getKeys(keyId)[0];
    const subRevoked =
      sub && sub !== key && (await (sub as openpgp.Subkey).isRevoked(null as never, null as never, at));
    if ((await key.isRevoked(undefined, undefined, at)) || subRevoked)
      return { reason: 'revoked-key', detail: 'the key is revoked' };
    const primaryExpiry = await key.getExpirationTime();
    const subExpiry = sub && sub !== key ? await (sub as openpgp.Subkey).getExpirationTime(at) : null;
    for (const exp of [primaryExpiry, subExpiry])
      if (exp instanceof Date && exp.getTime() <= at.getTime())
        return { reason: 'expired-key', detail: `the key expired at ${exp.toISOString()}` };
    return { reason: 'bad-signature', detail: `the key cannot sign: ${(e as Error).message}` };
  }
}

/** Verifies a detached armored OpenPGP signature of `payload` against trusted `keys` at time `at`. */
export async function verifyOpenPgp(
  payload: Uint8Array,
  armoredSignature: string,
  keys: readonly OpenPgpKey[],
  at: Date,
): Promise<OpenPgpResult> {
  const fail = (
    reason: 'unknown-key' | 'bad-signature' | 'expired-key' | 'revoked-key',
    keyId: string | null,
    fingerprint: string | null,
    detail: string,
  ): OpenPgpResult => ({ ok: false, reason, keyId, fingerprint, detail });
  let signature: openpgp.Signature;
  try {
    signature = await openpgp.readSignature({ armoredSignature });
  } catch (e) {
    return fail(
      'bad-signature',
      null,
      null,
      `the OpenPGP signature cannot be read (${(e as Error).message})`,
    );
  }
  const ids = signature.getSigningKeyIDs();
  // One signature packet, one issuer: anything else is not what git makes, and is refused.
  if (signature.packets.length !== 1 || ids.length !== 1)
    return fail('bad-signature', null, null, `expected one signature, found ${signature.packets.length}`);
  const keyId = ids[0]!;
  const key = keys.find((k) => k.getKeys(keyId).length > 0);
  if (!key) return fail('unknown-key', hexId(keyId), null, 'no trusted OpenPGP key has this key id');
  const fingerprint = key.getFingerprint().toUpperCase();
  let verified = true;
  let why = '';
  try {
    const message = await openpgp.createMessage({ binary: payload });
    const result = await openpgp.verify({
      message,
      signature,
      verificationKeys: [key],
      date: at,
      format: 'binary',
    });
    await result.signatures[0]!.verified;
  } catch (e) {
    verified = false;
    why = (e as Error).message;
  }
  const status = await keyStatus(key, keyId, at);
  if (status) return fail(status.reason, hexId(keyId), fingerprint, status.detail);
  if (!verified)
    return fail('bad-signature', hexId(keyId), fingerprint, `the signature does not verify (${why})`);
  return { ok: true, fingerprint, keyId: hexId(keyId) };
}
