/** verifyCommit's results for inputs no real signer makes: each is a rejection with its reason, never a throw. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type VerifyResult, verifyCommit } from '../../../../agent/source/verify/verify.js';

const oid = 'a'.repeat(40);
const payload = 'tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ncommitter A <a@x> 1700000000 +0000\n\nm\n';
const noTrust = { openpgp: [], ssh: [] };
const reason = (r: VerifyResult): string => (r.ok ? 'ok' : r.reason);

test('rejections for odd signatures, each naming the commit', async () => {
  const cases: Array<[string | undefined, string, string]> = [
    [undefined, payload, 'unsigned'],
    ['  \n', payload, 'unsigned'],
    [
      '-----BEGIN PGP SIGNATURE-----\n\nnot base64 at all\n-----END PGP SIGNATURE-----\n',
      payload,
      'bad-signature',
    ],
    ['-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n', payload, 'bad-signature'],
    ['-----BEGIN SIGNED MESSAGE-----\nMIAG\n-----END SIGNED MESSAGE-----\n', payload, 'unsupported-format'],
    ['-----BEGIN SOMETHING-----\n', payload, 'unsupported-format'],
    [`-----BEGIN SSH SIGNATURE-----\n${'A'.repeat(70_000)}\n`, payload, 'bad-signature'],
    ['-----BEGIN SSH SIGNATURE-----\n', 'tree x\n\nno committer\n', 'malformed'],
  ];
  for (const [gpgsig, p, expected] of cases) {
    const r = await verifyCommit({ oid, payload: p, gpgsig }, noTrust, new Date());
    assert.equal(reason(r), expected, `${JSON.stringify(gpgsig?.slice(0, 40))}: ${JSON.stringify(r)}`);
    assert.ok(!r.ok && r.message.startsWith(`commit ${oid.slice(0, 12)}`), JSON.stringify(r));
    assert.ok(!r.ok && r.message.length < 400, 'a message, not a dump');
  }
  const huge = await verifyCommit(
    {
      oid,
      payload,
      gpgsig: `-----BEGIN PGP SIGNATURE-----\n${'A'.repeat(70_000)}\n-----END PGP SIGNATURE-----\n`,
    },
    noTrust,
    new Date(),
  );
  assert.ok(
    !huge.ok && /more than the 65536/.test(huge.message),
    'refused for its size, before any parser sees it',
  );
});
