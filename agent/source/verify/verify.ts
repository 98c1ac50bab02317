/**
 * Verifying a commit's signature against the agent's trust policy (SPEC §10).
 *
 * Input: a commit's signed payload and signature as cut by `signedCommit`
 * (commit.ts) from the raw object — not isomorphic-git's `readCommit().payload`.
 * Output: a result, never a throw, for every verification outcome.
 *
 * Formats: OpenPGP (`-----BEGIN PGP SIGNATURE-----`, openpgp.js) and SSH
 * (`-----BEGIN SSH SIGNATURE-----`, namespace `git`, node:crypto). x509/gitsign
 * (`-----BEGIN SIGNED MESSAGE-----`) and anything else: `unsupported-format`.
 *
 * Which time counts: a key must be valid BOTH at the commit's committer time
 * and at `at` (the time of verification, normally now). git uses only the
 * commit's time for `valid-after`/`valid-before`, but that time is chosen by
 * whoever signs: with git's rule, someone holding a retired (valid-before) or
 * compromised key could still sign commits dated in the past. With both, a
 * `valid-before` in the past retires a key for good; the price is that a commit
 * signed by a key before it was retired, and not yet applied, is rejected —
 * rotate keys with an overlap (docs/signatures.md). For OpenPGP the signature's
 * own creation time plays the part of the committer time (openpgp.js checks
 * the key at that time); expiry and revocation are also checked at `at`.
 */
import type { AllowedSigner } from './allowed-signers.js';
import { committerTime } from './commit.js';
import { type OpenPgpKey, verifyOpenPgp } from './openpgp.js';
import {
  parseSshPublicKey,
  parseSshSignature,
  SshFormatError,
  type SshSignature,
  verifySshSignature,
} from './ssh.js';

export interface TrustPolicy {
  openpgp: readonly OpenPgpKey[];
  ssh: readonly AllowedSigner[];
}

export interface CommitToVerify {
  oid: string;
  /** The signed bytes (a string is taken as its UTF-8 bytes). */
  payload: Uint8Array | string;
  gpgsig: string | undefined;
}

export type VerifyFailureReason =
  | 'unsigned'
  | 'unknown-key'
  | 'bad-signature'
  | 'expired-key'
  | 'revoked-key'
  | 'not-yet-valid'
  | 'namespace'
  | 'unsupported-format'
  | 'malformed';

export type VerifyResult =
  | {
      ok: true;
      format: 'openpgp' | 'ssh';
      /** OpenPGP: the primary key's fingerprint (upper-case hex). SSH: `<principals> SHA256:<fingerprint>`. */
      signer: string;
      /** OpenPGP: the signing (sub)key id; SSH: the key's SHA256 fingerprint. */
      keyId: string;
    }
  | {
      ok: false;
      reason: VerifyFailureReason;
      format: 'openpgp' | 'ssh' | null;
      /** The key named by the signature when it could be read (OpenPGP key id, SSH SHA256 fingerprint). */
      keyId: string | null;
      /** Names the commit (short sha) and the key, says what to do next. Never holds file contents. */
      message: string;
    };

const PGP = '-----BEGIN PGP SIGNATURE-----';
const SSH = '-----BEGIN SSH SIGNATURE-----';
const X509 = '-----BEGIN SIGNED MESSAGE-----';
/** Far above any real signature (an RSA-4096 OpenPGP one is ~1 KiB); bounds what the parsers are fed. */
const MAX_SIGNATURE_CHARS = 64 * 1024;

/** Text from a signature (chosen by whoever pushed) made safe for one log line. */
function printable(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 80)}...` : clean;
}

function fail(
  commit: CommitToVerify,
  reason: VerifyFailureReason,
  format: 'openpgp' | 'ssh' | null,
  keyId: string | null,
  what: string,
  todo: string,
): VerifyResult {
  const key = keyId ? ` (key ${keyId})` : '';
  return {
    ok: false,
    reason,
    format,
    keyId,
    message: `commit ${commit.oid.slice(0, 12)}${key}: ${what}; ${todo}`,
  };
}

const iso = (d: Date): string => d.toISOString();

/** Whether `at` is inside the signer's window; the failing bound otherwise. */
function windowProblem(
  s: AllowedSigner,
  at: Date,
  what: string,
): { reason: VerifyFailureReason; text: string } | null {
  if (s.validAfter && at.getTime() < s.validAfter.getTime())
    return {
      reason: 'not-yet-valid',
      text: `${what} ${iso(at)} is before the key's valid-after ${iso(s.validAfter)}`,
    };
  if (s.validBefore && at.getTime() >= s.validBefore.getTime())
    return {
      reason: 'expired-key',
      text: `${what} ${iso(at)} is not before the key's valid-before ${iso(s.validBefore)}`,
    };
  return null;
}

function verifySsh(
  commit: CommitToVerify,
  payload: Uint8Array,
  signers: readonly AllowedSigner[],
  at: Date,
  committed: Date,
): VerifyResult {
  let sig: SshSignature;
  let fingerprint: string;
  let valid: boolean;
  try {
    sig = parseSshSignature(commit.gpgsig!);
    const key = parseSshPublicKey(sig.publicKey);
    fingerprint = key.fingerprint;
    const candidates = signers.filter((s) => s.publicKey.blob.equals(sig.publicKey));
    if (candidates.length === 0)
      return fail(
        commit,
        'unknown-key',
        'ssh',
        fingerprint,
        'signed by an SSH key that is not in the allowed-signers file',
        "add the signer's public key to source.verify.ssh if it is trusted, or re-sign the commit with a trusted key",
      );
    valid = verifySshSignature(sig, key, payload);
    if (!valid)
      return fail(
        commit,
        'bad-signature',
        'ssh',
        fingerprint,
        'the SSH signature does not match the commit (tampered or corrupt)',
        'do not apply it: find out who pushed it, and push a commit signed by a trusted key',
      );
    if (sig.namespace !== 'git')
      return fail(
        commit,
        'namespace',
        'ssh',
        fingerprint,
        `the SSH signature is for namespace "${printable(sig.namespace)}", not "git"`,
        'sign commits with git (gpg.format=ssh), which uses the namespace "git"',
      );
    let problem: { reason: VerifyFailureReason; text: string } | null = null;
    for (const s of candidates) {
      if (s.namespaces && !s.namespaces.includes('git')) {
        problem ??= { reason: 'namespace', text: `${s.source} does not allow this key the namespace "git"` };
        continue;
      }
      const p =
        windowProblem(s, committed, 'the commit time') ?? windowProblem(s, at, 'the verification time');
      if (p) {
        problem ??= { reason: p.reason, text: `${p.text} (${s.source})` };
        continue;
      }
      return {
        ok: true,
        format: 'ssh',
        signer: `${s.principals.join(',')} ${fingerprint}`,
        keyId: fingerprint,
      };
    }
    return fail(
      commit,
      problem!.reason,
      'ssh',
      fingerprint,
      problem!.text,
      'sign with a key that is valid now, or fix the allowed-signers line',
    );
  } catch (e) {
    if (!(e instanceof SshFormatError)) throw e;
    return fail(
      commit,
      'bad-signature',
      'ssh',
      null,
      `the SSH signature cannot be used: ${e.message}`,
      'sign with ssh-ed25519, ecdsa-sha2-nistp* or an RSA key (rsa-sha2-256/512)',
    );
  }
}

/**
 * Verifies one commit against the trust policy at time `at` (see the module
 * comment for how time is used). Never throws for a verification outcome.
 */
export async function verifyCommit(
  commit: CommitToVerify,
  trust: TrustPolicy,
  at: Date,
): Promise<VerifyResult> {
  try {
    return await verifyOrThrow(commit, trust, at);
  } catch (e) {
    // Fail closed on anything unforeseen (a key the crypto library chokes on, ...): a rejection, not a crash.
    return fail(
      commit,
      'bad-signature',
      null,
      null,
      `the signature could not be checked (${printable((e as Error).message ?? String(e))})`,
      'push a commit signed by a trusted key',
    );
  }
}

async function verifyOrThrow(commit: CommitToVerify, trust: TrustPolicy, at: Date): Promise<VerifyResult> {
  const payload = typeof commit.payload === 'string' ? Buffer.from(commit.payload, 'utf8') : commit.payload;
  const sig = commit.gpgsig?.trimStart();
  if (sig === undefined || sig === '')
    return fail(
      commit,
      'unsigned',
      null,
      null,
      'the commit is not signed',
      'sign it (git commit -S) with a key in source.verify',
    );
  if (sig.length > MAX_SIGNATURE_CHARS)
    return fail(
      commit,
      'bad-signature',
      null,
      null,
      `the signature is ${sig.length} characters, more than the ${MAX_SIGNATURE_CHARS} a commit signature needs`,
      'push a commit signed by a trusted key',
    );
  const committed = committerTime(payload);
  if (!committed)
    return fail(
      commit,
      'malformed',
      null,
      null,
      'the commit has no committer time',
      'push a well-formed commit',
    );
  if (sig.startsWith(SSH)) return verifySsh(commit, payload, trust.ssh, at, committed);
  if (sig.startsWith(PGP)) {
    const r = await verifyOpenPgp(payload, sig, trust.openpgp, at);
    if (r.ok) return { ok: true, format: 'openpgp', signer: r.fingerprint, keyId: r.keyId };
    const todo: Record<typeof r.reason, string> = {
      'unknown-key':
        "add the signer's public key to source.verify.openpgp if it is trusted, or re-sign with a trusted key",
      'bad-signature': 'do not apply it: find out who pushed it, and push a commit signed by a trusted key',
      'expired-key':
        'extend the key (gpg --quick-set-expire), update the exported key file, or sign with a valid key',
      'revoked-key':
        'sign with a key that is not revoked, and remove the revoked key from source.verify.openpgp',
    };
    const key =
      r.fingerprint && r.keyId && !r.fingerprint.endsWith(r.keyId)
        ? `${r.keyId} of ${r.fingerprint}`
        : r.keyId;
    return fail(commit, r.reason, 'openpgp', key, r.detail, todo[r.reason]);
  }
  const kind = sig.startsWith(X509)
    ? 'an x509/gitsign (S/MIME) signature'
    : 'a signature in an unknown format';
  return fail(
    commit,
    'unsupported-format',
    null,
    null,
    `${kind}, which steward cannot verify`,
    'sign with OpenPGP (gpg) or SSH (gpg.format=ssh)',
  );
}
