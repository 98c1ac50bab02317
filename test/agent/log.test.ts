import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../agent/log.js';

test('the real logger censors secrets and file contents, wherever a caller puts them', () => {
  const CANARY = 'AKIA-SECRET-CANARY-log-19c2';
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const log = createLogger('info', sink);
  log.info({ authorization: `Bearer ${CANARY}` }, 'a');
  log.info({ req: { headers: { authorization: `Bearer ${CANARY}`, 'x-hub-signature-256': CANARY } } }, 'b');
  log.info({ config: { auth: { password: CANARY } }, alert: { secret: CANARY } }, 'c');
  log.info({ resource: { spec: { content: CANARY } }, content: CANARY }, 'd');
  log.info({ event: { resource: { spec: { content: CANARY } } } }, 'e');
  log.info({ resource: 'File/motd', paths: ['replace /spec/content'] }, 'applied');
  assert.equal(lines.length, 6);
  for (const l of lines) assert.ok(!l.includes(CANARY), l);
  assert.match(lines[5]!, /"paths":\["replace \/spec\/content"\]/, 'paths are kept');
});
