/**
 * SPEC §9: an unauthenticated request's body is never parsed. The 404 and
 * 405 answers (an unknown path, or a known path with another method) are
 * unauthenticated too: they must be given before any body byte is read, like
 * the 401 of a route. A malformed JSON body tells: parsed, it answers 400
 * "malformed JSON"; unread, 404 / 405 with the connection closed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startOneFileDaemon } from '../helpers/daemon.js';
import { rawRequest } from '../helpers/raw-http.js';

test('unauthenticated bodies sent to a 404 or 405 are answered without being read or parsed', async (t) => {
  const d = await startOneFileDaemon(t);
  const cases: Array<[string, string, number, string]> = [
    ['POST', '/v1/nope', 404, 'NOT_FOUND'],
    ['POST', '/nope', 404, 'NOT_FOUND'],
    ['POST', '/healthz', 405, 'METHOD_NOT_ALLOWED'],
    ['POST', '/v1/status', 405, 'METHOD_NOT_ALLOWED'],
    ['PUT', '/v1/freeze', 405, 'METHOD_NOT_ALLOWED'],
    ['DELETE', '/v1/mode', 405, 'METHOD_NOT_ALLOWED'],
  ];
  for (const [method, target, status, code] of cases) {
    const r = await rawRequest(d.url, {
      method,
      target,
      headers: { 'content-type': 'application/json' },
      body: '{not json',
    });
    const what = `${method} ${target}`;
    assert.equal(r.status, status, `${what}: ${r.body}`);
    assert.equal((r.json as { error: { code: string } }).error.code, code, what);
    assert.equal(r.headers['connection'], 'close', `${what}: the unread body is not kept on the connection`);
  }
});

test('CONNECT is answered in the error shape (405), not by a dropped connection', async (t) => {
  const d = await startOneFileDaemon(t);
  for (const target of ['127.0.0.1:80', d.url.replace('http://', '')]) {
    const r = await rawRequest(d.url, { method: 'CONNECT', target });
    assert.equal(r.status, 405, `CONNECT ${target}: ${r.body}`);
    assert.equal((r.json as { error: { code: string } }).error.code, 'METHOD_NOT_ALLOWED');
  }
});
