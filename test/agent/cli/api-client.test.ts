/** The CLI's API client against real loopback servers: a hostile --api cannot make it buffer without bound. */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { request } from '../../../agent/cli/api-client.js';
import { isStewardError } from '../../../core/errors.js';

test('an endless answer is cut off with ADMIN_ANSWER_TOO_LARGE after the limit, not buffered', {
  timeout: 60_000,
}, async (t) => {
  let sent = 0;
  const chunk = Buffer.alloc(64 * 1024, 'a');
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const pump = () => {
      while (!res.destroyed && res.write(chunk)) {
        sent += chunk.length;
        if (sent > 64 * 1024 * 1024) return res.end(); // a bound for the test itself: 64 MiB
      }
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  server.on('connection', (s) => t.after(() => s.destroy()));
  const { port } = server.address() as AddressInfo;
  const target = { url: `http://127.0.0.1:${port}`, token: 't', tokenFile: '/x', configFile: null };
  const limit = 1024 * 1024;
  await assert.rejects(request(target, 'GET', '/v1/status', undefined, limit), (e) => {
    assert.ok(isStewardError(e, 'ADMIN_ANSWER_TOO_LARGE'), String(e));
    assert.match((e as Error).message, /larger than 1 MiB/);
    return true;
  });
  assert.ok(sent < 16 * 1024 * 1024, `the client stopped reading early (server sent ${sent} bytes)`);
});

test('an answer within the limit is read whole and parsed', async (t) => {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ mode: 'enforce' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const { port } = server.address() as AddressInfo;
  const target = { url: `http://127.0.0.1:${port}`, token: 't', tokenFile: '/x', configFile: null };
  const a = await request(target, 'GET', '/v1/status');
  assert.equal(a.status, 200);
  assert.deepEqual(a.body, { mode: 'enforce' });
});
