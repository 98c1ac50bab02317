/** The http check against real loopback servers: status only, no redirect followed, bounded in time and bytes. */
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { runHttpCheck } from '../../../agent/health/http.js';

let server: Server;
let base = '';
const seen: string[] = [];
/** Bytes the endless route handed to its socket. */
let endlessBytes = 0;
const sockets = new Set<Socket>();
/** Resolves when the server sees a connection close (the check dropped it). */
const closed: Array<() => void> = [];

before(async () => {
  server = createServer((req, res: ServerResponse) => {
    seen.push(req.url ?? '');
    const m = /^\/status\/(\d+)$/.exec(req.url ?? '');
    if (m) return void res.writeHead(Number(m[1])).end('a body that is never read into a detail');
    if (req.url === '/redirect') return void res.writeHead(302, { location: '/status/200' }).end();
    if (req.url === '/hang') return; // never answers
    if (req.url === '/stall') return void res.writeHead(200).write('a start, and never an end'); // no end
    if (req.url === '/endless') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = () => {
        for (;;) {
          if (res.destroyed) return;
          endlessBytes += chunk.length;
          if (!res.write(chunk)) break;
        }
        res.once('drain', pump);
      };
      pump();
      return;
    }
    res.writeHead(404).end();
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => {
      sockets.delete(s);
      for (const c of closed.splice(0)) c();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

const spec = (path: string, o: { expectStatus?: number; timeoutMs?: number; url?: string } = {}) => ({
  name: 'web',
  kind: 'http' as const,
  intervalMs: 30_000,
  timeoutMs: o.timeoutMs ?? 2_000,
  url: o.url ?? `${base}${path}`,
  expectStatus: o.expectStatus ?? 200,
});

/** Waits until the server holds no open connection from the check. */
async function noConnections(): Promise<void> {
  while (sockets.size > 0) await new Promise<void>((r) => closed.push(r));
}

describe('http check', () => {
  it('passes on the expected status and fails on another, never quoting the body', async () => {
    assert.deepEqual(await runHttpCheck(spec('/status/200')), { ok: true, detail: 'HTTP 200' });
    assert.deepEqual(await runHttpCheck(spec('/status/500')), {
      ok: false,
      detail: 'HTTP 500, expected 200',
    });
    assert.deepEqual(await runHttpCheck(spec('/status/204', { expectStatus: 204 })), {
      ok: true,
      detail: 'HTTP 204',
    });
  });

  it('does not follow a redirect', async () => {
    seen.length = 0;
    assert.deepEqual(await runHttpCheck(spec('/redirect')), {
      ok: false,
      detail: 'HTTP 302, expected 200 (redirects are not followed)',
    });
    assert.deepEqual(seen, ['/redirect']);
  });

  it('fails with a timeout against a server that never answers, and drops the connection', async () => {
    const r = await runHttpCheck(spec('/hang', { timeoutMs: 200 }));
    assert.deepEqual(r, { ok: false, detail: 'no answer within 200ms' });
    await noConnections();
  });

  it('fails with a timeout when the answer starts but never ends (the whole answer is bounded)', async () => {
    assert.deepEqual(await runHttpCheck(spec('/stall', { timeoutMs: 200 })), {
      ok: false,
      detail: 'no answer within 200ms',
    });
    await noConnections();
  });

  it('fails with "connection refused" on a port nobody listens on', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const { port } = s.address() as AddressInfo;
    await new Promise((r) => s.close(r));
    assert.deepEqual(await runHttpCheck(spec('', { url: `http://127.0.0.1:${port}/healthz` })), {
      ok: false,
      detail: 'connection refused (ECONNREFUSED)',
    });
  });

  it('reads at most a small part of an endless body, then drops the connection', async () => {
    assert.deepEqual(await runHttpCheck(spec('/endless', { timeoutMs: 5_000 })), {
      ok: true,
      detail: 'HTTP 200',
    });
    await noConnections();
    // the check's cap is 64 KiB; what else the server wrote sat in socket buffers (drained for 5 s: gigabytes)
    assert.ok(endlessBytes < 32 * 1024 * 1024, `the server wrote ${endlessBytes} bytes`);
  });

  it('stops at once when the runner stops', async () => {
    const stop = new AbortController();
    const running = runHttpCheck(spec('/hang', { timeoutMs: 60_000 }), stop.signal);
    stop.abort();
    assert.deepEqual(await running, { ok: false, detail: 'not finished: the agent is stopping' });
    await noConnections();
  });
});
