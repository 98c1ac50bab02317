/**
 * SSHSIG verification with node:crypto against signatures made by the real
 * `ssh-keygen -Y sign`, for every supported key type; SHA-1 RSA signatures and
 * malformed blobs are refused.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  parseSshPublicKey,
  parseSshSignature,
  SshFormatError,
  signedData,
  verifySshSignature,
} from '../../../../agent/source/verify/ssh.js';
import { makeSshKey, run, type SshKey, type SshKeyType } from '../../../helpers/signing.js';

let dir: string;
const message = Buffer.from('tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nhello\n');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'steward-sshsig-'));
  await writeFile(join(dir, 'message'), message);
});
after(() => rm(dir, { recursive: true, force: true }));

async function sshSign(key: SshKey, namespace = 'git'): Promise<string> {
  await run('ssh-keygen', ['-q', '-Y', 'sign', '-n', namespace, '-f', key.privatePath, join(dir, 'message')]);
  const sig = await readFile(join(dir, 'message.sig'), 'utf8');
  await rm(join(dir, 'message.sig'));
  return sig;
}

const b64 = (k: SshKey): Buffer => Buffer.from(k.publicLine.split(' ')[1]!, 'base64');

for (const type of ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa'] as SshKeyType[]) {
  test(`ssh-keygen -Y sign with ${type}: verifies; a changed message does not`, async () => {
    const key = await makeSshKey(dir, type, type);
    const sig = parseSshSignature(await sshSign(key));
    const pub = parseSshPublicKey(sig.publicKey);
    assert.equal(pub.fingerprint, key.fingerprint, 'the fingerprint ssh-keygen -l prints');
    assert.ok(pub.blob.equals(b64(key)), 'the key in the signature is the .pub key');
    assert.equal(sig.namespace, 'git');
    assert.equal(verifySshSignature(sig, pub, message), true);
    const changed = Buffer.from(message);
    changed[changed.length - 2] = changed[changed.length - 2]! ^ 1;
    assert.equal(verifySshSignature(sig, pub, changed), false);
  });
}

test('a signature does not verify against another key, even of the same type', async () => {
  const a = await makeSshKey(dir, 'a', 'ed25519');
  const b = await makeSshKey(dir, 'b', 'ed25519');
  const sig = parseSshSignature(await sshSign(a));
  assert.equal(verifySshSignature(sig, parseSshPublicKey(b64(b)), message), false);
  // The embedded key swapped for b's: the signature no longer matches.
  assert.equal(verifySshSignature({ ...sig, publicKey: b64(b) }, parseSshPublicKey(b64(b)), message), false);
});

test('the namespace is part of what is signed: relabelling "file" as "git" breaks the signature', async () => {
  const key = await makeSshKey(dir, 'ns', 'ed25519');
  const sig = parseSshSignature(await sshSign(key, 'file'));
  assert.equal(sig.namespace, 'file');
  const pub = parseSshPublicKey(sig.publicKey);
  assert.equal(verifySshSignature(sig, pub, message), true);
  assert.equal(verifySshSignature({ ...sig, namespace: 'git' }, pub, message), false);
});

/** An SSHSIG made here with node:crypto over an RSA key, with the given signature algorithm. */
function rsaSshSig(sigType: string, hash: string): { armored: string; blob: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const str = (b: Buffer | string): Buffer => {
    const body = typeof b === 'string' ? Buffer.from(b) : b;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    return Buffer.concat([len, body]);
  };
  const mpint = (b64u: string): Buffer => {
    const v = Buffer.from(b64u, 'base64url');
    return str(v[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
  };
  const blob = Buffer.concat([str('ssh-rsa'), mpint(jwk.e!), mpint(jwk.n!)]);
  const fields = { publicKey: blob, namespace: 'git', reserved: Buffer.alloc(0), hashAlgorithm: 'sha512' };
  const data = signedData({ ...fields, signatureType: sigType, signature: Buffer.alloc(0) }, message);
  const signature = cryptoSign(hash, data, privateKey);
  const version = Buffer.alloc(4);
  version.writeUInt32BE(1);
  const raw = Buffer.concat([
    Buffer.from('SSHSIG'),
    version,
    str(blob),
    str('git'),
    str(''),
    str('sha512'),
    str(Buffer.concat([str(sigType), str(signature)])),
  ]);
  const body = raw.toString('base64').replace(/(.{70})/g, '$1\n');
  return { armored: `-----BEGIN SSH SIGNATURE-----\n${body}\n-----END SSH SIGNATURE-----\n`, blob };
}

test('RSA: rsa-sha2-256 made by node verifies; an "ssh-rsa" (SHA-1) signature is refused', () => {
  const good = rsaSshSig('rsa-sha2-256', 'sha256');
  const sig = parseSshSignature(good.armored);
  assert.equal(verifySshSignature(sig, parseSshPublicKey(good.blob), message), true);
  const sha1 = rsaSshSig('ssh-rsa', 'sha1');
  const sig1 = parseSshSignature(sha1.armored);
  assert.throws(() => verifySshSignature(sig1, parseSshPublicKey(sha1.blob), message), /SHA-1/);
});

test('RSA keys under 2048 bits are refused', async () => {
  const key = await makeSshKey(dir, 'small', 'rsa');
  assert.doesNotThrow(() => parseSshPublicKey(b64(key)));
  await run('ssh-keygen', ['-q', '-t', 'rsa', '-b', '1024', '-N', '', '-f', join(dir, 'rsa1024')]);
  const small = Buffer.from((await readFile(join(dir, 'rsa1024.pub'), 'utf8')).split(' ')[1]!, 'base64');
  assert.throws(() => parseSshPublicKey(small), /shorter than 2048/);
});

test('malformed signatures are SshFormatError, never a pass', async () => {
  const key = await makeSshKey(dir, 'mal', 'ed25519');
  const armored = await sshSign(key);
  const raw = Buffer.from(armored.split('\n').slice(1, -2).join(''), 'base64');
  const arm = (b: Buffer): string =>
    `-----BEGIN SSH SIGNATURE-----\n${b.toString('base64')}\n-----END SSH SIGNATURE-----`;
  const v2 = Buffer.from(raw);
  v2.writeUInt32BE(2, 6);
  const cases: Array<[string, string, RegExp]> = [
    ['no armor', raw.toString('base64'), /not an armored/],
    ['trailing bytes', arm(Buffer.concat([raw, Buffer.from([0])])), /trailing/],
    ['truncated', arm(raw.subarray(0, raw.length - 5)), /truncated/],
    ['version 2', arm(v2), /version 2/],
    ['bad magic', arm(Buffer.concat([Buffer.from('SSHSIH'), raw.subarray(6)])), /magic/],
    ['bad base64', armored.replace(/\n([A-Za-z0-9+/])/, '\n*'), /base64/],
  ];
  for (const [name, text, re] of cases)
    assert.throws(
      () => parseSshSignature(text),
      (e: unknown) => e instanceof SshFormatError && re.test(e.message),
      name,
    );
});
