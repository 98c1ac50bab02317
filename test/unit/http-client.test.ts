import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  advertisedCapabilities,
  ensureHeadAdvertised,
  requestThinPack,
} from '../../agent/source/http-client.js';

const pkt = (s: string) => `${(s.length + 4).toString(16).padStart(4, '0')}${s}`;

test('requestThinPack adds thin-pack to the first want line only, once', () => {
  const body = Buffer.from(`${pkt('want abc multi_ack side-band-64k\n')}${pkt('want def\n')}0000`, 'latin1');
  const out = requestThinPack(body).toString('latin1');
  assert.equal(out, `${pkt('want abc multi_ack side-band-64k thin-pack\n')}${pkt('want def\n')}0000`);
  assert.equal(requestThinPack(Buffer.from(out, 'latin1')).toString('latin1'), out, 'idempotent');
});

test('advertisedCapabilities reads the first ref line', () => {
  const advert = Buffer.from(
    `${pkt('# service=git-upload-pack\n')}0000${pkt('abc HEAD\0multi_ack thin-pack shallow\n')}0000`,
    'latin1',
  );
  assert.deepEqual([...advertisedCapabilities(advert)].sort(), ['multi_ack', 'shallow', 'thin-pack']);
});

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
