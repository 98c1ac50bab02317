import assert from 'node:assert/strict';
import { test } from 'node:test';
import { displayUrl, ensureHeadAdvertised, redirectTarget } from '../../../agent/source/http-client.js';

const pkt = (s: string) => `${(s.length + 4).toString(16).padStart(4, '0')}${s}`;

test('ensureHeadAdvertised adds a HEAD line when the remote advertises none, and leaves others alone', () => {
  const sha = 'a'.repeat(40);
  const without = Buffer.from(
    `${pkt('# service=git-upload-pack\n')}0000${pkt(`${sha} refs/heads/main\0multi_ack\n`)}0000`,
    'latin1',
  );
  const fixed = ensureHeadAdvertised(without).toString('latin1');
  assert.equal(
    fixed,
    `${pkt('# service=git-upload-pack\n')}0000${pkt(`${sha} HEAD\0multi_ack\n`)}${pkt(`${sha} refs/heads/main\n`)}0000`,
  );
  assert.equal(ensureHeadAdvertised(Buffer.from(fixed, 'latin1')).toString('latin1'), fixed);
});

test('redirectTarget follows only the configured origin and never from https to http', () => {
  const origin = 'https://git.example.org';
  const from = new URL('https://git.example.org/infra/desired/info/refs?service=git-upload-pack');
  const follow = (loc: string) => {
    const d = redirectTarget(from, loc, origin);
    return 'follow' in d ? d.follow.href : null;
  };
  const refusal = (loc: string | undefined) => {
    const d = redirectTarget(from, loc, origin);
    return 'refuse' in d ? d.refuse : null;
  };
  assert.equal(
    follow('/infra/desired.git/info/refs?service=git-upload-pack'),
    'https://git.example.org/infra/desired.git/info/refs?service=git-upload-pack',
  );
  assert.equal(
    follow('https://GIT.example.org:443/x'),
    'https://git.example.org/x',
    'default port, host case',
  );
  assert.equal(follow('https://u:p@git.example.org/x#frag'), 'https://git.example.org/x', 'userinfo dropped');
  assert.match(
    refusal('http://git.example.org/x') ?? '',
    /from https to http, to http:\/\/git\.example\.org\/x/,
  );
  assert.match(
    refusal('https://git.example.org:8443/x') ?? '',
    /another origin, https:\/\/git\.example\.org:8443\/x/,
  );
  assert.match(refusal('https://evil.example.org/x') ?? '', /another origin/);
  assert.match(refusal('ftp://git.example.org/x') ?? '', /from https to ftp/);
  assert.match(refusal(undefined) ?? '', /without a Location/);
  const leaky = refusal('https://user:s3cret@evil.example.org/x?token=t0ken') ?? '';
  assert.ok(!/s3cret|t0ken|user/.test(leaky), leaky);
  // From http, an upgrade to https of the same host is still another origin.
  const plain = redirectTarget(new URL('http://h:8080/r'), 'https://h:8080/r', 'http://h:8080');
  assert.ok('refuse' in plain);
});

test('displayUrl drops userinfo, query and fragment', () => {
  assert.equal(
    displayUrl('https://user:pw@h.example:8443/a/b.git?access_token=x#f'),
    'https://h.example:8443/a/b.git',
  );
  assert.equal(displayUrl('not a url'), '(an unparsable URL)');
});
