/**
 * core/hmac.ts: the one HMAC-SHA256 signer/verifier (alert X-Steward-Signature,
 * GitHub's X-Hub-Signature-256). Known vectors from RFC 4231 and GitHub's
 * webhook docs; every malformed header is false, never an exception.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sign, verify } from '../../core/hmac.js';

describe('hmac.sign', () => {
  it('matches published HMAC-SHA256 vectors, as sha256=<lowercase hex>', () => {
    // RFC 4231 test case 1 (key 0x0b × 20; bytes below 0x80 are the same in UTF-8) and test case 2.
    assert.equal(
      sign('Hi There', '\x0b'.repeat(20)),
      'sha256=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
    );
    assert.equal(
      sign('what do ya want for nothing?', 'Jefe'),
      'sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
    // GitHub's "Validating webhook deliveries" example.
    assert.equal(
      sign('Hello, World!', "It's a Secret to Everybody"),
      'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
    );
  });

  it('signs a string as its UTF-8 bytes', () => {
    const text = 'incident 42 — café ☕';
    assert.equal(sign(text, 'k'), sign(Buffer.from(text, 'utf8'), 'k'));
    assert.equal(sign(text, 'k'), sign(new Uint8Array(Buffer.from(text, 'utf8')), 'k'));
    assert.notEqual(sign(text, 'k'), sign(Buffer.from(text, 'latin1'), 'k'));
  });
});

// Moved from the alerter tests (signBody / verifySignature), assertions unchanged.
describe('hmac: signBody / verifySignature cases of the alerter', () => {
  const body = 'The quick brown fox jumps over the lazy dog';
  const good = 'sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8';

  it('signs with HMAC-SHA256 as sha256=<hex> (RFC 4231-style known vector)', () => {
    assert.equal(sign(body, 'key'), good);
    assert.equal(sign(Buffer.from(body), 'key'), good);
  });

  it('accepts the right signature (hex in either case)', () => {
    assert.equal(verify(body, good, 'key'), true);
    assert.equal(verify(body, good.toUpperCase().replace('SHA256=', 'sha256='), 'key'), true);
  });

  it('rejects a wrong, missing or malformed header without throwing', () => {
    const wrong = `${good.slice(0, -1)}9`;
    const cases: Array<string | undefined> = [
      wrong,
      undefined,
      '',
      'sha256=',
      good.slice(7), // no prefix
      `sha1=${good.slice(7)}`,
      good.slice(0, -2), // shorter
      `${good}00`, // longer
      `sha256=${'zz'.repeat(32)}`, // not hex
      'sha256=ab', // far too short: timingSafeEqual would throw on unequal lengths
      `sha256=${'ab'.repeat(1000)}`,
    ];
    for (const header of cases) {
      assert.doesNotThrow(() => verify(body, header, 'key'));
      assert.equal(verify(body, header, 'key'), false, String(header));
    }
    assert.equal(verify(body, good, 'other-key'), false);
    assert.equal(verify(`${body}.`, good, 'key'), false);
  });
});

describe('hmac.verify', () => {
  const body = Buffer.from('{"event":"frozen","message":"café ☕"}', 'utf8');
  const secret = 'alert-hmac-key';
  const good = sign(body, secret);
  const hex = good.slice('sha256='.length);

  it('accepts its own signature over bytes or the same text', () => {
    assert.equal(verify(body, good, secret), true);
    assert.equal(verify(body.toString('utf8'), good, secret), true);
  });

  it('takes the hex in any case, the prefix in any case, and ignores surrounding whitespace', () => {
    const mixed = [...hex].map((c, i) => (i % 2 === 0 ? c.toUpperCase() : c)).join('');
    for (const header of [
      `sha256=${hex.toUpperCase()}`,
      `sha256=${mixed}`,
      `SHA256=${hex}`,
      `Sha256=${hex}`,
      ` ${good}\t`,
    ])
      assert.equal(verify(body, header, secret), true, header);
  });

  it('is false for one changed byte of the body, the signature or the secret', () => {
    const flipped = Buffer.from(body);
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    assert.equal(verify(flipped, good, secret), false);
    const last = hex.at(-1) === '0' ? '1' : '0';
    assert.equal(verify(body, `sha256=${hex.slice(0, -1)}${last}`, secret), false);
    assert.equal(verify(body, good, `${secret}x`), false);
    assert.equal(verify(body, good, ''), false);
  });

  it('is false (never throws) for every wrong length: each nibble short or long of 64', () => {
    for (let n = 0; n <= 130; n++) {
      if (n === 64) continue;
      const header = `sha256=${'a'.repeat(n)}`;
      assert.doesNotThrow(() => verify(body, header, secret));
      assert.equal(verify(body, header, secret), false, `${n} hex digits`);
    }
    // An odd count that Buffer.from(hex) would silently truncate to the right length.
    assert.equal(verify(body, `${good}0`, secret), false);
    assert.equal(verify(body, `sha256=${hex.slice(0, 63)}`, secret), false);
  });

  it('is false for malformed headers, including what a header value can be at run time', () => {
    const malformed: unknown[] = [
      undefined,
      null,
      '',
      ' ',
      'sha256',
      'sha256=',
      hex, // no prefix
      `sha256:${hex}`,
      `sha256 =${hex}`,
      `sha256= ${hex}`,
      `sha256=${hex.slice(0, 32)} ${hex.slice(32)}`,
      `sha512=${hex}`,
      `sha256=${hex},sha256=${hex}`,
      `sha256=${'g'.repeat(64)}`,
      `sha256=0x${hex.slice(2)}`,
      [good], // a repeated header arrives as a list
      [good, good],
      42,
      { toString: () => good },
    ];
    for (const header of malformed) {
      const h = header as string | undefined;
      assert.doesNotThrow(() => verify(body, h, secret));
      assert.equal(verify(body, h, secret), false, String(header));
    }
  });
});
