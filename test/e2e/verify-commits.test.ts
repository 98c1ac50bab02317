/**
 * Commit signatures end to end: real keys made here (ssh-keygen, GnuPG with a
 * temporary GNUPGHOME), real `git commit -S`, the raw commit read back with
 * isomorphic-git, and verified by agent/source/verify against a trust policy.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as fs from 'node:fs';
import isogit from 'isomorphic-git';
import { parseAllowedSigners } from '../../agent/source/verify/allowed-signers.js';
import { signedCommit } from '../../agent/source/verify/commit.js';
import { readOpenPgpKeys } from '../../agent/source/verify/openpgp.js';
import { type TrustPolicy, type VerifyResult, verifyCommit } from '../../agent/source/verify/verify.js';
import {
  allowedSignersLine,
  commitSigned,
  type GpgKey,
  initRepo,
  makeGpgKey,
  makeSshKey,
  readRawCommit,
  revokeGpgKey,
  run,
  type SshKey,
  type SshKeyType,
  sshProgramWithNamespace,
  stopGpg,
  writeRawCommit,
} from '../helpers/signing.js';

const DAY = 24 * 3600 * 1000;
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

let root: string;
let repo: string;
const ssh = new Map<SshKeyType, SshKey>();
let stranger: SshKey;
let gpgKey: GpgKey;
let gpgShort: GpgKey;
let gpgOther: GpgKey;
let gpgRevoked: GpgKey;
let trust: TrustPolicy;
/** Signed by gpgRevoked before it was revoked (gpg does not sign with a revoked key). */
let revokedOid: string;

async function verifyAt(oid: string, at = new Date()): Promise<VerifyResult> {
  const commit = signedCommit(oid, await readRawCommit(repo, oid));
  assert.ok(commit, 'the raw bytes hash to the oid');
  return verifyCommit(commit, trust, at);
}

function assertRejected(r: VerifyResult, reason: string, oid: string, key: RegExp | null): void {
  assert.equal(r.ok, false, `expected ${reason}, got ${JSON.stringify(r)}`);
  if (r.ok) return;
  assert.equal(r.reason, reason, r.message);
  assert.match(r.message, new RegExp(`^commit ${oid.slice(0, 12)}`));
  if (key) assert.match(r.message, key);
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'steward-verify-'));
  repo = join(root, 'repo');
  await initRepo(repo);
  for (const type of ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa'] as const)
    ssh.set(type, await makeSshKey(join(root, 'ssh'), type, type));
  stranger = await makeSshKey(join(root, 'ssh'), 'stranger', 'ed25519');
  gpgKey = await makeGpgKey(join(root, 'gpg-ops'), 'Ops <ops@example.org>');
  gpgShort = await makeGpgKey(join(root, 'gpg-short'), 'Short <short@example.org>', '1d');
  gpgOther = await makeGpgKey(join(root, 'gpg-other'), 'Other <other@example.org>');
  gpgRevoked = await makeGpgKey(join(root, 'gpg-revoked'), 'Gone <gone@example.org>');
  revokedOid = await commitSigned(repo, { format: 'openpgp', key: gpgRevoked }, 'gpg revoked');
  const lines = [...ssh.entries()].map(([type, key]) => allowedSignersLine(`${type}@example.org`, key));
  const signers = parseAllowedSigners(`# ops\n${lines.join('\n')}\n`, 'allowed_signers');
  assert.deepEqual(signers.problems, []);
  const keys = [];
  for (const armored of [gpgKey.armoredPublic, gpgShort.armoredPublic, await revokeGpgKey(gpgRevoked)]) {
    const read = await readOpenPgpKeys(armored, 'ops.asc');
    assert.deepEqual(read.problems, []);
    keys.push(...read.keys);
  }
  trust = { openpgp: keys, ssh: signers.signers };
});

after(async () => {
  for (const k of [gpgKey, gpgShort, gpgOther, gpgRevoked]) if (k) await stopGpg(k.home);
  await rm(root, { recursive: true, force: true });
});

describe('SSH-signed commits (gpg.format=ssh)', () => {
  for (const type of ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa'] as const) {
    test(`a commit signed with an ${type} key verifies; the signer is its principal and fingerprint`, async () => {
      const key = ssh.get(type)!;
      const oid = await commitSigned(repo, { format: 'ssh', key }, `ssh ${type}`);
      const r = await verifyAt(oid);
      assert.deepEqual(r, {
        ok: true,
        format: 'ssh',
        signer: `${type}@example.org ${key.fingerprint}`,
        keyId: key.fingerprint,
      });
    });
  }

  test('a commit signed by a key not in the allowed-signers file is unknown-key, naming its fingerprint', async () => {
    const oid = await commitSigned(repo, { format: 'ssh', key: stranger }, 'stranger');
    assertRejected(await verifyAt(oid), 'unknown-key', oid, new RegExp(escapeRegExp(stranger.fingerprint)));
  });

  test('a signature made for another namespace than "git" is rejected (namespace)', async () => {
    const program = await sshProgramWithNamespace(root, 'file');
    const oid = await commitSigned(
      repo,
      { format: 'ssh', key: ssh.get('ed25519')!, program },
      'namespace file',
    );
    assertRejected(await verifyAt(oid), 'namespace', oid, /namespace "file"/);
  });

  test('a tampered payload (one byte of the message changed, object re-hashed) is bad-signature', async () => {
    const oid = await commitSigned(repo, { format: 'ssh', key: ssh.get('ed25519')! }, 'tamper me');
    const raw = Buffer.from(await readRawCommit(repo, oid));
    const at = raw.lastIndexOf('tamper me');
    raw[at] = 'T'.charCodeAt(0);
    const forged = await writeRawCommit(repo, raw);
    assertRejected(await verifyAt(forged), 'bad-signature', forged, /does not match/);
  });

  test('valid-before / valid-after: counted at the commit time AND at the verification time', async () => {
    const key = ssh.get('ed25519')!;
    const oid = await commitSigned(repo, { format: 'ssh', key }, 'windows', { date: '2026-01-10T12:00:00Z' });
    const commit = signedCommit(oid, await readRawCommit(repo, oid))!;
    const withLine = (options: string): TrustPolicy => ({
      openpgp: [],
      ssh: parseAllowedSigners(allowedSignersLine('ops', key, options), 'as').signers,
    });
    const now = new Date('2026-03-01T00:00:00Z');
    assert.equal((await verifyCommit(commit, withLine('valid-after="20260101Z"'), now)).ok, true);
    const retired = await verifyCommit(commit, withLine('valid-before="20260201Z"'), now);
    assert.equal(
      retired.ok ? 'ok' : retired.reason,
      'expired-key',
      'a retired key cannot sign, even dated before',
    );
    const early = await verifyCommit(commit, withLine('valid-after="20260115Z"'), now);
    assert.equal(early.ok ? 'ok' : early.reason, 'not-yet-valid', 'the commit predates the key');
    const onlyFile = await verifyCommit(commit, withLine('namespaces="file"'), now);
    assert.equal(onlyFile.ok ? 'ok' : onlyFile.reason, 'namespace', 'the key may not sign for git');
  });
});

describe('OpenPGP-signed commits (GnuPG)', () => {
  test('a commit signed with a trusted key verifies; the signer is the fingerprint', async () => {
    const oid = await commitSigned(repo, { format: 'openpgp', key: gpgKey }, 'gpg good');
    assert.deepEqual(await verifyAt(oid), {
      ok: true,
      format: 'openpgp',
      signer: gpgKey.fingerprint,
      keyId: gpgKey.fingerprint.slice(-16),
    });
  });

  test('a commit signed with a signing SUBKEY verifies; the signer is the primary fingerprint', async () => {
    const home = join(root, 'gpg-sub');
    const key = await makeGpgKey(home, 'Sub <sub@example.org>', 'never', 'cert');
    try {
      await run(
        'gpg',
        ['--batch', '--passphrase', '', '--quick-add-key', key.fingerprint, 'ed25519', 'sign'],
        {
          GNUPGHOME: home,
        },
      );
      const colons = await run('gpg', ['--batch', '--with-colons', '--list-keys', key.fingerprint], {
        GNUPGHOME: home,
      });
      const subFpr = colons
        .split('\n')
        .filter((l) => l.startsWith('fpr:'))[1]!
        .split(':')[9]!;
      const exported = await run('gpg', ['--batch', '--armor', '--export', key.fingerprint], {
        GNUPGHOME: home,
      });
      const oid = await commitSigned(
        repo,
        { format: 'openpgp', key: { ...key, fingerprint: `${subFpr}!` } },
        'sub',
      );
      const commit = signedCommit(oid, await readRawCommit(repo, oid))!;
      const { keys } = await readOpenPgpKeys(exported, 'sub.asc');
      const r = await verifyCommit(commit, { openpgp: keys, ssh: [] }, new Date());
      assert.deepEqual(r, { ok: true, format: 'openpgp', signer: key.fingerprint, keyId: subFpr.slice(-16) });
      assertRejected(await verifyAt(oid), 'unknown-key', oid, new RegExp(subFpr.slice(-16)));
    } finally {
      await stopGpg(home);
    }
  });

  test('a key file holding a private key, or no key, is a problem', async () => {
    const secret = await run(
      'gpg',
      [
        '--batch',
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        '',
        '--armor',
        '--export-secret-keys',
        gpgOther.fingerprint,
      ],
      {
        GNUPGHOME: gpgOther.home,
      },
    );
    const priv = await readOpenPgpKeys(secret, '/etc/steward/keys/ops.asc');
    assert.deepEqual(priv.keys, []);
    assert.match(priv.problems[0]?.message ?? '', /PRIVATE key/);
    const none = await readOpenPgpKeys('not a key', 'k.asc');
    assert.match(none.problems[0]?.message ?? '', /not an armored OpenPGP public key/);
  });

  test('a commit signed by an unknown key is unknown-key, naming its key id', async () => {
    const oid = await commitSigned(repo, { format: 'openpgp', key: gpgOther }, 'gpg other');
    assertRejected(await verifyAt(oid), 'unknown-key', oid, new RegExp(gpgOther.fingerprint.slice(-16)));
  });

  test('a tampered payload is bad-signature', async () => {
    const oid = await commitSigned(repo, { format: 'openpgp', key: gpgKey }, 'gpg tamper');
    const raw = Buffer.from(await readRawCommit(repo, oid));
    raw[raw.lastIndexOf('gpg tamper')] = 'G'.charCodeAt(0);
    const forged = await writeRawCommit(repo, raw);
    assertRejected(
      await verifyAt(forged),
      'bad-signature',
      forged,
      new RegExp(gpgKey.fingerprint.slice(-16)),
    );
  });

  test('a key that expires in a day, checked two days later, is expired-key', async () => {
    const oid = await commitSigned(repo, { format: 'openpgp', key: gpgShort }, 'gpg short');
    assert.equal((await verifyAt(oid)).ok, true, 'valid today');
    assertRejected(await verifyAt(oid, new Date(Date.now() + 2 * DAY)), 'expired-key', oid, /expired/);
  });

  test('a commit signed by a key since revoked is revoked-key', async () => {
    assertRejected(await verifyAt(revokedOid), 'revoked-key', revokedOid, /revoked/);
  });
});

describe('neither', () => {
  test('an unsigned commit is unsigned', async () => {
    const oid = await commitSigned(repo, { format: 'none' }, 'unsigned');
    assertRejected(await verifyAt(oid), 'unsigned', oid, /not signed/);
  });

  test('an x509/gitsign-looking signature is unsupported-format', async () => {
    const head = await commitSigned(repo, { format: 'none' }, 'x509 base');
    const text = Buffer.from(await readRawCommit(repo, head)).toString('utf8');
    const sig = [
      '-----BEGIN SIGNED MESSAGE-----',
      'MIAGCSqGSIb3DQEHAqCAMIACAQExDTALBglghkgBZQMEAgEwgAYJKoZIhvcNAQcB',
      '-----END SIGNED MESSAGE-----',
    ];
    const end = text.indexOf('\n\n');
    const raw = `${text.slice(0, end)}\ngpgsig ${sig.join('\n ')}${text.slice(end)}`;
    const oid = await writeRawCommit(repo, Buffer.from(raw));
    assertRejected(await verifyAt(oid), 'unsupported-format', oid, /x509/);
  });

  test("isomorphic-git's readCommit().payload is NOT the signed payload of an SSH commit (use signedCommit)", async () => {
    const oid = await commitSigned(repo, { format: 'ssh', key: ssh.get('ed25519')! }, 'iso payload');
    const { payload } = await isogit.readCommit({ fs, gitdir: join(repo, '.git'), oid });
    const ours = signedCommit(oid, await readRawCommit(repo, oid))!;
    assert.notEqual(payload, ours.payload.toString('utf8'));
    const r = await verifyCommit({ oid, payload, gpgsig: ours.gpgsig }, trust, new Date());
    assert.equal(r.ok, false, 'verifying over the mangled payload fails (closed)');
  });
});
