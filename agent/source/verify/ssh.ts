/**
 * SSH signatures (SSHSIG, the format of `ssh-keygen -Y sign` and of git's
 * `gpg.format=ssh`), verified with node:crypto only.
 *
 * Format (openssh-portable PROTOCOL.sshsig): armored
 * `-----BEGIN SSH SIGNATURE-----`; inside, the magic `SSHSIG`, uint32 version 1,
 * string public key, string namespace, string reserved, string hash algorithm
 * (`sha256` | `sha512`), string signature. The signature covers
 * `SSHSIG || string(namespace) || string(reserved) || string(hash_alg) || string(H(message))`.
 *
 * Key types: `ssh-ed25519`, `ecdsa-sha2-nistp256/384/521`, and `ssh-rsa` keys
 * (>= 2048 bits) with `rsa-sha2-256`/`rsa-sha2-512` signatures only — SHA-1
 * `ssh-rsa` signatures are refused. Not supported: certificates and security
 * keys (`sk-*`): their signatures are reported as unsupported.
 */
// biome-ignore lint/style/noRestrictedImports: types only, erased at build
import type { KeyObject } from 'node:crypto';
import { nodeCrypto } from '../../../core/builtins.js';

const MAGIC = Buffer.from('SSHSIG', 'ascii');
const BEGIN = '-----BEGIN SSH SIGNATURE-----';
const END = '-----END SSH SIGNATURE-----';
const MIN_RSA_BITS = 2048;

/** A public key from its SSH wire-format blob. */
export interface SshPublicKey {
  /** The key type named in the blob, e.g. `ssh-ed25519`. */
  type: string;
  blob: Buffer;
  key: KeyObject;
  /** `SHA256:<base64 without padding>`, as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

/** The fields of an SSHSIG blob. */
export interface SshSignature {
  publicKey: Buffer;
  namespace: string;
  reserved: Buffer;
  hashAlgorithm: string;
  /** The signature algorithm named in the signature blob (e.g. `rsa-sha2-512`). */
  signatureType: string;
  signature: Buffer;
}

/** Thrown by the readers below on malformed input; callers turn it into a result. */
export class SshFormatError extends Error {
  override readonly name = 'SshFormatError';
}

/** Reads SSH wire-format fields (RFC 4251: uint32, string, mpint) from a buffer, strictly. */
class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  uint32(): number {
    if (this.pos + 4 > this.buf.length) throw new SshFormatError('truncated (uint32)');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  bytes(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new SshFormatError('truncated');
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  string(): Buffer {
    return this.bytes(this.uint32());
  }

  text(): string {
    return this.string().toString('latin1');
  }

  /** A positive mpint as its magnitude (no sign byte, no leading zeros). */
  mpint(): Buffer {
    const v = this.string();
    if (v.length > 0 && (v[0]! & 0x80) !== 0) throw new SshFormatError('negative mpint');
    let i = 0;
    while (i < v.length && v[i] === 0) i++;
    return v.subarray(i);
  }

  end(): void {
    if (this.pos !== this.buf.length) throw new SshFormatError('trailing bytes');
  }
}

function sshString(b: Buffer | string): Buffer {
  const body = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

const b64url = (b: Buffer): string => b.toString('base64url');

const CURVES: Record<string, { crv: string; size: number; hash: string }> = {
  nistp256: { crv: 'P-256', size: 32, hash: 'sha256' },
  nistp384: { crv: 'P-384', size: 48, hash: 'sha384' },
  nistp521: { crv: 'P-521', size: 66, hash: 'sha512' },
};

export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${nodeCrypto().createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Parses an SSH public key blob into a node KeyObject. Throws SshFormatError when unsupported or malformed. */
export function parseSshPublicKey(blob: Buffer): SshPublicKey {
  const r = new Reader(blob);
  const type = r.text();
  let key: KeyObject;
  if (type === 'ssh-ed25519') {
    const pk = r.string();
    r.end();
    if (pk.length !== 32) throw new SshFormatError('ed25519 key is not 32 bytes');
    key = nodeCrypto().createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(pk) }, format: 'jwk' });
  } else if (type.startsWith('ecdsa-sha2-')) {
    const curveName = r.text();
    const q = r.string();
    r.end();
    const curve = CURVES[curveName];
    if (!curve || type !== `ecdsa-sha2-${curveName}`)
      throw new SshFormatError(`unsupported ECDSA key ${type}`);
    if (q.length !== 1 + 2 * curve.size || q[0] !== 0x04)
      throw new SshFormatError('ECDSA point is not uncompressed');
    const x = q.subarray(1, 1 + curve.size);
    const y = q.subarray(1 + curve.size);
    try {
      key = nodeCrypto().createPublicKey({
        key: { kty: 'EC', crv: curve.crv, x: b64url(x), y: b64url(y) },
        format: 'jwk',
      });
    } catch {
      throw new SshFormatError('ECDSA point is not on the curve');
    }
  } else if (type === 'ssh-rsa') {
    const e = r.mpint();
    const n = r.mpint();
    r.end();
    if (n.length * 8 < MIN_RSA_BITS) throw new SshFormatError(`RSA key shorter than ${MIN_RSA_BITS} bits`);
    try {
      key = nodeCrypto().createPublicKey({ key: { kty: 'RSA', e: b64url(e), n: b64url(n) }, format: 'jwk' });
    } catch {
      throw new SshFormatError('RSA key is not usable');
    }
  } else {
    throw new SshFormatError(
      `unsupported key type ${type} (supported: ssh-ed25519, ecdsa-sha2-nistp*, ssh-rsa)`,
    );
  }
  return { type, blob, key, fingerprint: sshFingerprint(blob) };
}

/** Strict base64 (Buffer.from ignores bad characters, which must not pass here). */
export function decodeBase64(text: string): Buffer | null {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  return Buffer.from(text, 'base64');
}

/** Parses an armored SSH signature. Throws SshFormatError when malformed. */
export function parseSshSignature(armored: string): SshSignature {
  const lines = armored
    .replace(/\r/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  if (lines[0] !== BEGIN || lines[lines.length - 1] !== END)
    throw new SshFormatError('not an armored SSH signature');
  const raw = decodeBase64(lines.slice(1, -1).join(''));
  if (!raw) throw new SshFormatError('bad base64');
  const r = new Reader(raw);
  if (!r.bytes(MAGIC.length).equals(MAGIC)) throw new SshFormatError('no SSHSIG magic');
  const version = r.uint32();
  if (version !== 1) throw new SshFormatError(`unsupported SSHSIG version ${version}`);
  const publicKey = r.string();
  const namespace = r.string().toString('utf8');
  const reserved = r.string();
  const hashAlgorithm = r.text();
  const sigBlob = r.string();
  r.end();
  const s = new Reader(sigBlob);
  const signatureType = s.text();
  const signature = s.string();
  // OpenSSH allows extra data after the signature only for sk-* keys, which are not supported.
  s.end();
  return { publicKey, namespace, reserved, hashAlgorithm, signatureType, signature };
}

/** The bytes an SSHSIG signature covers. */
export function signedData(sig: SshSignature, message: Uint8Array): Buffer {
  const hash = nodeCrypto().createHash(sig.hashAlgorithm).update(message).digest();
  return Buffer.concat([
    MAGIC,
    sshString(sig.namespace),
    sshString(sig.reserved),
    sshString(sig.hashAlgorithm),
    sshString(hash),
  ]);
}

/**
 * Whether `sig` is a valid signature of `message` by `key` (which must be the
 * key embedded in the signature). Throws SshFormatError for unsupported
 * algorithms (SHA-1 `ssh-rsa`, unknown hash, signature type not matching the key).
 */
export function verifySshSignature(sig: SshSignature, key: SshPublicKey, message: Uint8Array): boolean {
  if (!key.blob.equals(sig.publicKey)) return false;
  if (sig.hashAlgorithm !== 'sha256' && sig.hashAlgorithm !== 'sha512')
    throw new SshFormatError(`unsupported hash algorithm ${sig.hashAlgorithm} (sha256 or sha512)`);
  const data = signedData(sig, message);
  if (key.type === 'ssh-ed25519') {
    if (sig.signatureType !== 'ssh-ed25519')
      throw new SshFormatError(`signature type ${sig.signatureType} for an ed25519 key`);
    return sig.signature.length === 64 && nodeCrypto().verify(null, data, key.key, sig.signature);
  }
  if (key.type.startsWith('ecdsa-sha2-')) {
    if (sig.signatureType !== key.type)
      throw new SshFormatError(`signature type ${sig.signatureType} for a ${key.type} key`);
    const curve = CURVES[key.type.slice('ecdsa-sha2-'.length)]!;
    const r = new Reader(sig.signature);
    const rr = r.mpint();
    const ss = r.mpint();
    r.end();
    if (rr.length > curve.size || ss.length > curve.size) return false;
    const p1363 = Buffer.alloc(2 * curve.size);
    rr.copy(p1363, curve.size - rr.length);
    ss.copy(p1363, 2 * curve.size - ss.length);
    return nodeCrypto().verify(curve.hash, data, { key: key.key, dsaEncoding: 'ieee-p1363' }, p1363);
  }
  if (key.type === 'ssh-rsa') {
    const hash = { 'rsa-sha2-256': 'sha256', 'rsa-sha2-512': 'sha512' }[sig.signatureType];
    if (!hash)
      throw new SshFormatError(
        `RSA signature type ${sig.signatureType} refused (SHA-1 "ssh-rsa" signatures are not accepted; sign with rsa-sha2-256/512)`,
      );
    return nodeCrypto().verify(
      hash,
      data,
      { key: key.key, padding: nodeCrypto().constants.RSA_PKCS1_PADDING },
      sig.signature,
    );
  }
  throw new SshFormatError(`unsupported key type ${key.type}`);
}
