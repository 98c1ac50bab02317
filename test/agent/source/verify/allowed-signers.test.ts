/** git's allowed-signers format: good lines with every option, and a file:line:col problem for each bad line. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { formatProblem } from '../../../../core/errors.js';
import { parseAllowedSigners, parseSshTime } from '../../../../agent/source/verify/allowed-signers.js';
import { makeSshKey, type SshKey } from '../../../helpers/signing.js';

let dir: string;
let ed: SshKey;
let ec: SshKey;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'steward-signers-'));
  ed = await makeSshKey(dir, 'ed', 'ed25519');
  ec = await makeSshKey(dir, 'ec', 'ecdsa-256');
});
after(() => rm(dir, { recursive: true, force: true }));

const keyOf = (k: SshKey): string => k.publicLine.split(' ').slice(0, 2).join(' ');

test('principals, options, comments and blank lines', () => {
  const text = [
    '# the ops team',
    '',
    `alice@example.org,bob@example.org ${keyOf(ed)} alice laptop`,
    `  "carol@example.org" namespaces="git,file",valid-after="20260101",VALID-BEFORE="20270101120000Z" ${keyOf(ec)}`,
    '\t# indented comment\r',
  ].join('\n');
  const { signers, problems } = parseAllowedSigners(text, 'allowed_signers');
  assert.deepEqual(problems, []);
  assert.equal(signers.length, 2);
  const [a, c] = signers as [(typeof signers)[0], (typeof signers)[0]];
  assert.deepEqual(a.principals, ['alice@example.org', 'bob@example.org']);
  assert.equal(a.namespaces, null);
  assert.equal(a.publicKey.fingerprint, ed.fingerprint, 'the same fingerprint as ssh-keygen -l');
  assert.equal(a.source, 'allowed_signers:3');
  assert.deepEqual(c.principals, ['carol@example.org']);
  assert.deepEqual(c.namespaces, ['git', 'file']);
  assert.equal(
    c.validAfter?.getTime(),
    new Date(2026, 0, 1).getTime(),
    'no Z: the system time zone, as ssh-keygen',
  );
  assert.equal(c.validBefore?.toISOString(), '2027-01-01T12:00:00.000Z');
  assert.equal(c.publicKey.type, 'ecdsa-sha2-nistp256');
});

test('each bad line is a file:line:col problem that says what is wrong; good lines still parse', () => {
  const [type, b64] = ed.publicLine.split(' ') as [string, string];
  const lines = [
    `ok@example.org ${type} ${b64}`,
    `ca@example.org cert-authority ${type} ${b64}`,
    `x@example.org valid-before="2026-01-01" ${type} ${b64}`,
    `x@example.org frobnicate="1" ${type} ${b64}`,
    `x@example.org ${type}`,
    `x@example.org ${type} not*base64`,
    `x@example.org ecdsa-sha2-nistp256 ${b64}`,
    `x@example.org ${type} ${b64.slice(0, 20)}`,
    `"x@example.org ${type} ${b64}`,
    `x@example.org ssh-dss AAAAB3NzaC1kc3MAAACBAP`,
  ];
  const { signers, problems } = parseAllowedSigners(lines.join('\n'), '/etc/steward/allowed_signers');
  assert.equal(signers.length, 1);
  const shown = problems.map(formatProblem);
  const at = (line: number, col: number, re: RegExp): void => {
    const p = shown.find((s) => s.startsWith(`/etc/steward/allowed_signers:${line}:${col}: `));
    assert.ok(p, `a problem at ${line}:${col} in ${JSON.stringify(shown, null, 1)}`);
    assert.match(p, re);
  };
  at(2, 16, /cert-authority is not supported.*certificates/);
  at(3, 15, /valid-before="2026-01-01" is not a time/);
  at(4, 15, /unknown option "frobnicate"/);
  at(5, 26, /missing base64 key/);
  at(6, 27, /not valid base64/);
  at(7, 15, /key type "ecdsa-sha2-nistp256" does not match the key, which is ssh-ed25519/);
  at(8, 27, /bad key: truncated/);
  at(9, 1, /unterminated quote/);
  at(10, 23, /not valid base64|unsupported key type/);
  assert.equal(problems.length, 9);
});

test('ssh-keygen times: YYYYMMDD[HHMM[SS]][Z], impossible dates refused', () => {
  assert.equal(parseSshTime('20260301Z')?.toISOString(), '2026-03-01T00:00:00.000Z');
  assert.equal(parseSshTime('202603011230Z')?.toISOString(), '2026-03-01T12:30:00.000Z');
  assert.equal(parseSshTime('20260301123045Z')?.toISOString(), '2026-03-01T12:30:45.000Z');
  for (const bad of ['20260230', '2026030', '20261301Z', '202603012460Z', 'soon', '20260301123060Z'])
    assert.equal(parseSshTime(bad), null, bad);
});
