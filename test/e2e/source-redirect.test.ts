/**
 * Git credentials go only to the configured origin (SPEC §9): over a REAL
 * `git http-backend`, a redirect to another port of the same host, or from
 * https to http, fails the poll with SOURCE_REDIRECT_REFUSED and the other
 * listener never sees the credentials; a same-origin redirect (e.g.
 * `/repo` → `/repo.git`) still works, with credentials.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { globalAgent, createServer as httpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { gitHttpClient } from '../../agent/source/http-client.js';
import type { PollOutcome } from '../../agent/source/source.js';
import { startGitServer } from '../helpers/git-server.js';
import { ENGINES, SOURCE_AUTH, SOURCE_SECRETS, serveRepo } from '../helpers/git-source.js';

function assertRefused(o: PollOutcome, target: RegExp): void {
  assert.equal(o.kind, 'error', `expected an error, got ${JSON.stringify(o)}`);
  if (o.kind !== 'error') return;
  assert.equal(o.error.code, 'SOURCE_REDIRECT_REFUSED', o.error.message);
  assert.match(o.error.message, target);
  for (const s of [...SOURCE_SECRETS, 'evil-pw'])
    assert.ok(!`${o.error.message}${JSON.stringify(o.error.details)}`.includes(s), o.error.message);
}

for (const engine of ENGINES)
  describe(engine, () => {
    test('a 302 to another port of the same host fails the poll; that port never sees the credentials (10 polls)', async (t) => {
      const f = await serveRepo(t, engine);
      // The other port serves the same repository without asking for auth: following would succeed.
      const other = await startGitServer({ projectRoot: f.projectRoot });
      t.after(() => other.stop());
      const port = new URL(other.baseUrl).port;
      f.server.redirect((r) => ({
        status: 302,
        location: `http://evil:evil-pw@127.0.0.1:${port}${r.path}?${r.query}`,
      }));
      const outcomes: PollOutcome[] = [];
      for (let i = 0; i < 10; i++) outcomes.push(await (await f.source()).poll());
      assert.equal(
        other.requests.filter((r) => r.hadAuthorization).length,
        0,
        'credentials reached the other port',
      );
      assert.equal(other.requests.length, 0, 'the redirect is not followed at all');
      for (const o of outcomes)
        assertRefused(o, new RegExp(`http://127\\.0\\.0\\.1:${port}/desired\\.git/info/refs`));
      assert.equal(f.server.requests.length, 10);
    });

    test('a same-origin redirect (/desired → /desired.git) is followed, with credentials, and the fetch uses the new base', async (t) => {
      const f = await serveRepo(t, engine);
      f.server.redirect((r) =>
        r.path.startsWith('/desired/')
          ? { status: 301, location: `${r.path.replace('/desired/', '/desired.git/')}?${r.query}` }
          : null,
      );
      const source = await f.source(`${f.server.baseUrl}/desired`);
      const o = await source.poll();
      assert.equal(o.kind, 'accepted', JSON.stringify(o));
      assert.equal(o.kind === 'accepted' && o.revision.sha, f.first);
      const seen = f.server.requests.map((r) => `${r.method} ${r.path} ${r.status} ${r.hadAuthorization}`);
      assert.deepEqual(seen, [
        'GET /desired/info/refs 301 true',
        'GET /desired.git/info/refs 200 true',
        // The native engine's fetch is given the advertisement its resolve just read (issue 12).
        ...(engine === 'git'
          ? []
          : ['GET /desired/info/refs 301 true', 'GET /desired.git/info/refs 200 true']),
        // Native git's stateless shallow fetch asks for the shallow list first, then the pack.
        ...(engine === 'git' ? ['POST /desired.git/git-upload-pack 200 true'] : []),
        'POST /desired.git/git-upload-pack 200 true',
      ]);
      assert.ok(f.server.requests.every((r) => r.authorized));
    });

    test('a redirect loop on the same origin fails the poll after a bounded number of hops', async (t) => {
      const f = await serveRepo(t, engine);
      f.server.redirect((r) => ({ status: 302, location: `${r.path}?${r.query}` }));
      const source = await f.source();
      assertRefused(await source.poll(), /too many redirects/);
      assert.ok(f.server.requests.length <= 6, `${f.server.requests.length} requests`);
    });

    test('an https source redirected to http fails the poll; the http listener never sees the credentials', async (t) => {
      const f = await serveRepo(t, engine);
      const dir = f.dir;
      await promisify(execFile)('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ]);
      const [key, cert] = await Promise.all([
        readFile(join(dir, 'key.pem')),
        readFile(join(dir, 'cert.pem')),
      ]);
      const plainPort = new URL(f.server.baseUrl).port;
      const tls = httpsServer({ key, cert }, (req, res) => {
        res.writeHead(302, { Location: `http://127.0.0.1:${plainPort}${req.url}` }).end();
      });
      await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
      // Trust the self-signed certificate in this test process only.
      const before = globalAgent.options.ca;
      globalAgent.options.ca = cert;
      t.after(async () => {
        globalAgent.options.ca = before;
        tls.closeAllConnections();
        await new Promise((resolve) => tls.close(resolve));
      });
      const tlsPort = (tls.address() as AddressInfo).port;
      const source = await f.source(`https://127.0.0.1:${tlsPort}/desired.git`);
      const o = await source.poll();
      assert.equal(
        f.server.requests.filter((r) => r.hadAuthorization).length,
        0,
        'credentials went over http',
      );
      assert.equal(f.server.requests.length, 0, 'the http listener got no request');
      assertRefused(o, /from https to http/);
    });
  });

test('a request the client is asked to send to another origin goes without credentials, even with an Authorization header', async (t) => {
  const f = await serveRepo(t);
  const other = await startGitServer({ projectRoot: f.projectRoot });
  t.after(() => other.stop());
  const counters = { requests: 0, packRequests: 0, bytesIn: 0 };
  const client = gitHttpClient({ url: f.server.repoUrl('desired'), auth: SOURCE_AUTH, counters });
  const ask = (url: string) =>
    client.request({
      url: `${url}/info/refs?service=git-upload-pack`,
      method: 'GET',
      headers: { Authorization: 'Basic c25lYWt5OnNuZWFreQ==' },
    });
  const res = await ask(other.repoUrl('desired'));
  assert.equal(res.statusCode, 200);
  assert.deepEqual(
    other.requests.map((r) => r.hadAuthorization),
    [false],
  );
  // The configured origin gets the configured credentials, not the header passed in.
  assert.equal((await ask(f.server.repoUrl('desired'))).statusCode, 200);
  assert.deepEqual(
    f.server.requests.map((r) => r.authorized),
    [true],
  );
  assert.equal(counters.requests, 2);
});
