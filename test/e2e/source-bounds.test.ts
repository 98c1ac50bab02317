/**
 * Bounded reads from the Git source, over a REAL smart-HTTP server: a huge ref
 * advertisement or pack is cut off with SOURCE_TOO_LARGE (the connection is
 * dropped, so memory stays bounded), and a server that never answers, or
 * stalls mid-response, fails the poll instead of hanging it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PollOutcome } from '../../agent/source/source.js';
import type { GitRequest } from '../helpers/git-server.js';
import { ENGINES, serveRepo } from '../helpers/git-source.js';

const MiB = 1024 * 1024;

function assertCode(o: PollOutcome, code: string, message: RegExp): void {
  assert.equal(o.kind, 'error', `expected an error, got ${JSON.stringify(o).slice(0, 300)}`);
  if (o.kind !== 'error') return;
  assert.equal(o.error.code, code, o.error.message);
  assert.match(o.error.message, message);
}

/** Runs `fn` while sampling the process's RSS; returns its result and the peak growth. */
async function peakRssGrowth<T>(fn: () => Promise<T>): Promise<{ result: T; growth: number }> {
  const base = process.memoryUsage.rss();
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { result, growth: peak - base };
  } finally {
    clearInterval(timer);
  }
}

for (const engine of ENGINES)
  describe(engine, () => {
    test('a 200 MiB ref advertisement is cut off at the limit with SOURCE_TOO_LARGE; RSS grows far less', async (t) => {
      const f = await serveRepo(t, engine);
      const source = await f.source();
      f.server.serveHuge({ advertisement: 200 * MiB });
      const { result, growth } = await peakRssGrowth(() => source.poll());
      t.diagnostic(
        `peak RSS growth ${(growth / MiB).toFixed(1)} MiB, server sent ${f.server.requests[0]?.bytesOut} bytes`,
      );
      assertCode(result, 'SOURCE_TOO_LARGE', /ref advertisement.*8 MiB/);
      assert.ok(growth < 64 * MiB, `RSS grew ${(growth / MiB).toFixed(0)} MiB`);
      const [advert] = f.server.requests;
      assert.ok(
        advert && advert.bytesOut < 40 * MiB,
        `the server sent ${advert?.bytesOut} bytes: reading stopped`,
      );
    });

    test('a 200 MiB pack is cut off at the (configured) pack limit with SOURCE_TOO_LARGE; RSS grows far less', async (t) => {
      const f = await serveRepo(t, engine);
      const source = await f.source(undefined, { maxPackBytes: 16 * MiB });
      f.server.serveHuge({ pack: 200 * MiB });
      const { result, growth } = await peakRssGrowth(() => source.poll());
      // Native git's stateless shallow fetch POSTs twice (the shallow list, then the pack): the larger one is the pack.
      const pack = f.server.requests
        .filter((r) => r.method === 'POST')
        .reduce<GitRequest | undefined>((a, r) => (a && a.bytesOut >= r.bytesOut ? a : r), undefined);
      const sent = pack?.bytesOut;
      t.diagnostic(`peak RSS growth ${(growth / MiB).toFixed(1)} MiB, server sent ${sent} bytes`);
      assertCode(result, 'SOURCE_TOO_LARGE', /pack.*16 MiB/);
      assert.ok(growth < 100 * MiB, `RSS grew ${(growth / MiB).toFixed(0)} MiB`);
      assert.ok(pack && pack.bytesOut < 64 * MiB, `the server sent ${pack?.bytesOut} bytes: reading stopped`);
      assert.equal(source.current, null);
    });

    test('a server that never answers fails the poll (response timeout) instead of hanging it', {
      timeout: 20_000,
    }, async (t) => {
      const f = await serveRepo(t, engine);
      // Long enough that the recovery poll below (a git process per request, on a loaded CI machine) answers in time.
      const source = await f.source(undefined, { responseTimeoutMs: 2_000 });
      f.server.hang(true);
      assertCode(await source.poll(), 'SOURCE_UNREACHABLE', /no response .*within 2 s/);
      f.server.hang(false);
      const o = await source.poll();
      assert.equal(o.kind, 'accepted', 'the next poll works');
    });

    test('a server that stalls mid-advertisement fails the poll (idle timeout)', {
      timeout: 20_000,
    }, async (t) => {
      const f = await serveRepo(t, engine);
      const source = await f.source(undefined, { idleTimeoutMs: 300 });
      f.server.serveHuge({ advertisement: 64 * 1024, stall: true });
      assertCode(await source.poll(), 'SOURCE_UNREACHABLE', /no data .*for 0\.3 s/);
    });
  });
