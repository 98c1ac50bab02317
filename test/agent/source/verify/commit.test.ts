/**
 * The signed payload of a commit, cut from the raw object: the bytes that the
 * real tools (ssh-keygen -Y check-novalidate, gpg --verify) accept as signed,
 * for commits made by `git commit -S`; bytes that are not the object are refused.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { committerTime, signedCommit, splitCommitSignature } from '../../../../agent/source/verify/commit.js';
import {
  commitSigned,
  type GpgKey,
  initRepo,
  makeGpgKey,
  makeSshKey,
  readRawCommit,
  run,
  stopGpg,
} from '../../../helpers/signing.js';

let dir: string;
let repo: string;
let gpg: GpgKey;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'steward-commit-sig-'));
  repo = join(dir, 'repo');
  await initRepo(repo);
  gpg = await makeGpgKey(join(dir, 'gnupg'), 'Payload <p@example.org>');
});
after(async () => {
  await stopGpg(gpg.home);
  await rm(dir, { recursive: true, force: true });
});

test('SSH: the payload is what ssh-keygen accepts as signed, and nothing of the signature is left in it', async () => {
  const key = await makeSshKey(dir, 'k', 'ed25519');
  const oid = await commitSigned(repo, { format: 'ssh', key }, 'line one\n\nline three', {
    date: '2026-02-03T04:05:06Z',
  });
  const c = signedCommit(oid, await readRawCommit(repo, oid));
  assert.ok(c);
  assert.match(c.gpgsig!, /^-----BEGIN SSH SIGNATURE-----\n[^ ]/, 'unindented');
  assert.doesNotMatch(c.payload.toString(), /gpgsig|SSH SIGNATURE/);
  await writeFile(join(dir, 'sig'), c.gpgsig!);
  await writeFile(join(dir, 'payload'), c.payload);
  await run('sh', ['-c', `ssh-keygen -Y check-novalidate -n git -s "${dir}/sig" < "${dir}/payload"`]);
  assert.equal(committerTime(c.payload)?.toISOString(), '2026-02-03T04:05:06.000Z');
});

test('OpenPGP: the payload is what gpg --verify accepts as signed', async () => {
  const oid = await commitSigned(repo, { format: 'openpgp', key: gpg }, 'pgp payload');
  const c = signedCommit(oid, await readRawCommit(repo, oid))!;
  assert.match(c.gpgsig!, /^-----BEGIN PGP SIGNATURE-----\n/);
  await writeFile(join(dir, 'sig.asc'), c.gpgsig!);
  await writeFile(join(dir, 'payload'), c.payload);
  await run('gpg', ['--batch', '--verify', join(dir, 'sig.asc'), join(dir, 'payload')], {
    GNUPGHOME: gpg.home,
  });
});

test('an unsigned commit has no signature and its payload is the whole object', async () => {
  const oid = await commitSigned(repo, { format: 'none' }, 'plain');
  const raw = await readRawCommit(repo, oid);
  const c = signedCommit(oid, raw)!;
  assert.equal(c.gpgsig, undefined);
  assert.ok(c.payload.equals(Buffer.from(raw)));
});

test('bytes that do not hash to the oid are refused', async () => {
  const oid = await commitSigned(repo, { format: 'none' }, 'hash me');
  const raw = Buffer.from(await readRawCommit(repo, oid));
  assert.ok(signedCommit(oid.toUpperCase(), raw));
  raw[raw.length - 2] = raw[raw.length - 2]! ^ 1;
  assert.equal(signedCommit(oid, raw), null);
});

test('as git: other gpgsig* headers leave the payload, a "gpgsig" in the message stays', () => {
  const raw = Buffer.from(
    [
      'tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904',
      'author A <a@x> 1 +0000',
      'committer A <a@x> 2 +0000',
      'gpgsig-sha256 -----BEGIN SSH SIGNATURE-----',
      ' other',
      ' -----END SSH SIGNATURE-----',
      'gpgsig -----BEGIN SSH SIGNATURE-----',
      ' mine',
      ' -----END SSH SIGNATURE-----',
      'extra header',
      '',
      'gpgsig in the message',
      ' indented',
      '',
    ].join('\n'),
  );
  const { payload, gpgsig } = splitCommitSignature(raw);
  assert.equal(gpgsig, '-----BEGIN SSH SIGNATURE-----\nmine\n-----END SSH SIGNATURE-----\n');
  assert.equal(
    payload.toString(),
    'tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 2 +0000\nextra header\n\ngpgsig in the message\n indented\n',
  );
  assert.equal(committerTime(payload)?.getTime(), 2000);
});
