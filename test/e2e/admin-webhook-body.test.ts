/**
 * Unauthenticated bodies are not read (SPEC §9): the route and the webhook's
 * signature header are checked before any body byte is buffered, and the
 * HMAC before JSON.parse. Raw sockets, so the test sees whether the server
 * answered before the body was sent.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { WEBHOOK_BUFFER_BUDGET } from '../../agent/admin/server.js';
import { type DaemonHarness, startOneFileDaemon } from '../helpers/daemon.js';

const sockets = new Set<Socket>();

async function daemon(
  t: { after: (fn: () => Promise<void>) => void },
  webhookSecret: string | null,
): Promise<DaemonHarness> {
  // An upload the server still waits for must not hold up its close.
  return startOneFileDaemon(t, {
    webhookSecret,
    beforeStop: () => {
      for (const s of sockets) s.destroy();
    },
  });
}

interface Upload {
  /** Resolves with the status line's code once the server answers. */
  status: Promise<number>;
  /** Sends the rest of the body (unless the server already answered). */
  finish(): Promise<void>;
  /** Body bytes written when the answer arrived. */
  sentWhenAnswered(): number;
}

/** Starts a POST declaring `size` body bytes, sends the headers and one small chunk, and waits. */
function startUpload(url: string, path: string, size: number, headers: Record<string, string>): Upload {
  const u = new URL(url);
  const sock = connect({ host: u.hostname, port: Number(u.port) });
  sockets.add(sock);
  sock.on('close', () => sockets.delete(sock));
  let sent = 0;
  let sentAtAnswer = -1;
  let answered = false;
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const status = new Promise<number>((resolve, reject) => {
    let head = '';
    sock.on('data', (c) => {
      if (!answered) {
        answered = true;
        sentAtAnswer = sent;
      }
      head += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (m) resolve(Number(m[1]));
    });
    sock.on('error', () => undefined); // the server may reset a body it will not read
    sock.on('close', () => reject(new Error('closed without an answer')));
  });
  status.catch(() => undefined);
  const h = {
    host: u.host,
    'content-type': 'application/json',
    'content-length': String(size),
    ...headers,
  };
  sock.write(
    `POST ${path} HTTP/1.1\r\n${Object.entries(h)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}\r\n`,
  );
  sock.write('{"ref":"refs/heads/main","pad":"');
  sent += 32;
  return {
    status,
    sentWhenAnswered: () => sentAtAnswer,
    async finish() {
      while (sent < size && !answered && !sock.destroyed) {
        const n = Math.min(chunk.length, size - sent);
        const last = sent + n === size;
        const piece = last
          ? Buffer.concat([chunk.subarray(0, n - 2), Buffer.from('"}')])
          : chunk.subarray(0, n);
        await new Promise<void>((r) => sock.write(piece, () => r()));
        sent += n;
      }
    },
  };
}

const SIZE = 4 * 1024 * 1024; // under the 5 MiB webhook limit: the old code buffered and parsed all of it

test('webhook disabled: a 4 MiB POST is answered 404 after its headers, its body never read', {
  timeout: 60_000,
}, async (t) => {
  const d = await daemon(t, null);
  const up = startUpload(d.url, '/v1/hooks/git', SIZE, {
    'x-hub-signature-256': `sha256=${'0'.repeat(64)}`,
  });
  assert.equal(await up.status, 404);
  await up.finish();
  assert.ok(up.sentWhenAnswered() < SIZE, `answered after ${up.sentWhenAnswered()} of ${SIZE} body bytes`);
});

test('24 concurrent unsigned 4 MiB posts (webhook and bearer routes) are answered before their bodies; memory does not grow by their size', {
  timeout: 60_000,
}, async (t) => {
  const d = await daemon(t, 'webhook-secret-for-tests');
  const N = 24;
  const before = process.memoryUsage();
  const ups = Array.from({ length: N }, (_, i) =>
    i % 2
      ? startUpload(d.url, '/v1/hooks/git', SIZE, { 'x-github-event': 'push' })
      : startUpload(d.url, '/v1/freeze', SIZE, {}),
  );
  const statuses = await Promise.all(ups.map((u) => u.status));
  await Promise.all(ups.map((u) => u.finish()));
  const after = process.memoryUsage();
  assert.deepEqual(
    statuses,
    Array.from({ length: N }, () => 401),
  );
  for (const u of ups) assert.ok(u.sentWhenAnswered() < SIZE);
  const grew = Math.max(
    after.rss - before.rss,
    after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers,
  );
  console.log(`${N} unsigned ${SIZE}-byte posts: RSS ${((after.rss - before.rss) / 2 ** 20).toFixed(1)} MiB`);
  assert.ok(grew < (N * SIZE) / 4, `memory grew by ${grew} bytes for ${N * SIZE} bytes of bodies`);
  assert.equal(d.daemon.agent.currentState.freeze, null);
});

test('signed-looking webhook bodies in flight are bounded: past the buffer budget they get 429 before their bodies', {
  timeout: 60_000,
}, async (t) => {
  const d = await daemon(t, 'webhook-secret-for-tests');
  const N = 24;
  const fits = Math.floor(WEBHOOK_BUFFER_BUDGET / SIZE);
  const ups = Array.from({ length: N }, () =>
    startUpload(d.url, '/v1/hooks/git', SIZE, {
      'x-github-event': 'push',
      'x-hub-signature-256': `sha256=${'ab'.repeat(32)}`, // well-formed, wrong
    }),
  );
  // Those over the budget are answered from their headers alone; wait for exactly those answers.
  const early: number[] = [];
  await new Promise<void>((resolve) => {
    for (const u of ups)
      void u.status.then((s) => {
        early.push(s);
        if (early.length === N - fits) resolve();
      });
  });
  assert.deepEqual(
    early,
    Array.from({ length: N - fits }, () => 429),
  );
  await Promise.all(ups.map((u) => u.finish()));
  const statuses = await Promise.all(ups.map((u) => u.status));
  assert.equal(
    statuses.filter((s) => s === 401).length,
    fits,
    'the ones within budget were read and refused by HMAC',
  );
});

test('unsigned or wrongly signed webhook posts, and unauthenticated API posts, never reach JSON.parse', {
  timeout: 60_000,
}, async (t) => {
  const d = await daemon(t, 'webhook-secret-for-tests');
  const marker = 'json-parse-marker-7f3a';
  const body = JSON.stringify({ ref: 'refs/heads/main', marker });
  let parsed = 0;
  const realParse = JSON.parse;
  JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
    if (typeof text === 'string' && text.includes(marker)) parsed++;
    return realParse(text, reviver);
  }) as typeof JSON.parse;
  t.after(() => {
    JSON.parse = realParse;
  });
  const post = (path: string, headers: Record<string, string>) =>
    fetch(`${d.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'push', ...headers },
      body,
    });
  const responses = [
    await post('/v1/hooks/git', {}),
    await post('/v1/hooks/git', { 'x-hub-signature-256': 'sha256=zz' }),
    await post('/v1/hooks/git', { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` }),
    await post('/v1/freeze', {}),
    await post('/v1/freeze', { authorization: 'Bearer wrong-token-wrong-token' }),
  ];
  const statuses = [];
  for (const r of responses) {
    statuses.push(r.status);
    const j = (await r.json()) as { error: { code: string } };
    assert.equal(j.error.code, 'UNAUTHORIZED');
  }
  JSON.parse = realParse;
  assert.deepEqual(statuses, [401, 401, 401, 401, 401]);
  assert.equal(parsed, 0, 'no unauthenticated body was parsed');
  // The counter sees a parse when one happens: a correctly signed delivery is parsed.
  JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
    if (typeof text === 'string' && text.includes(marker)) parsed++;
    return realParse(text, reviver);
  }) as typeof JSON.parse;
  const sig = `sha256=${createHmac('sha256', d.webhookSecret).update(body).digest('hex')}`;
  const ok = await post('/v1/hooks/git', { 'x-hub-signature-256': sig });
  JSON.parse = realParse;
  assert.equal(ok.status, 202);
  await ok.text();
  assert.ok(parsed >= 1);
  await d.daemon.agent.idle();
});
