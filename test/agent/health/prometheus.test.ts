/**
 * The prometheus check against a REAL Prometheus (Debian's 2.42) on loopback,
 * scraping itself: the pass rule (a non-empty vector of non-zero samples, or a
 * scalar ≠ 0), Prometheus's own errors, and a dead server.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { queryUrl, runPrometheusCheck } from '../../../agent/health/prometheus.js';
import { type PrometheusServer, startPrometheus } from '../../helpers/prometheus.js';

let prom: PrometheusServer;
before(async () => {
  prom = await startPrometheus();
  await prom.waitForData('up{job="prom"} == 1');
});
after(() => prom.stop());

const spec = (query: string, o: { url?: string; timeoutMs?: number } = {}) => ({
  name: 'errors',
  kind: 'prometheus' as const,
  intervalMs: 30_000,
  timeoutMs: o.timeoutMs ?? 5_000,
  url: o.url ?? prom.url,
  query,
});

describe('prometheus check (real server)', () => {
  it('passes on a true condition: a non-empty vector of non-zero samples', async () => {
    assert.deepEqual(await runPrometheusCheck(spec('up{job="prom"} == 1')), { ok: true, detail: 'value 1' });
    assert.deepEqual(await runPrometheusCheck(spec('vector(1) or vector(2)')), {
      ok: true,
      detail: 'value 1',
    });
  });

  it('fails on a false comparison (an empty vector)', async () => {
    assert.deepEqual(await runPrometheusCheck(spec('up{job="prom"} < 1')), {
      ok: false,
      detail: 'empty result: the condition is false, or no series matches',
    });
  });

  it('fails on a zero sample (one of many is enough); a scalar passes unless it is 0', async () => {
    assert.deepEqual(await runPrometheusCheck(spec('up{job="prom"} - 1')), { ok: false, detail: 'value 0' });
    assert.deepEqual(await runPrometheusCheck(spec('scalar(up{job="prom"})')), {
      ok: true,
      detail: 'scalar 1',
    });
    assert.deepEqual(await runPrometheusCheck(spec('scalar(up{job="prom"}) - 1')), {
      ok: false,
      detail: 'scalar 0',
    });
    assert.deepEqual(
      await runPrometheusCheck(spec('label_replace(vector(1), "a", "x", "", "") or vector(0)')),
      { ok: false, detail: '1 of 2 series are zero or NaN' },
    );
  });

  it('fails on a result that is neither a vector nor a scalar', async () => {
    assert.deepEqual(await runPrometheusCheck(spec('up{job="prom"}[1m]')), {
      ok: false,
      detail: 'the result is a matrix: write an instant query that returns a vector or a scalar',
    });
  });

  it("fails on a syntax error with Prometheus's error type", async () => {
    const r = await runPrometheusCheck(spec('sum(rate(http_5xx[1m]) <'));
    assert.equal(r.ok, false);
    assert.match(r.detail, /^Prometheus error bad_data: /);
  });

  it('keeps a path prefix of the base URL', () => {
    assert.equal(
      queryUrl('http://prom:9090/prometheus/', 'up == 1').href,
      'http://prom:9090/prometheus/api/v1/query?query=up+%3D%3D+1',
    );
  });

  it('fails on an answer that is not the Prometheus API, and on a server that never answers', async () => {
    const sockets = new Set<Socket>();
    const server: Server = createServer((req, res) => {
      if (req.url?.startsWith('/html/')) res.writeHead(200, { 'content-type': 'text/html' }).end('<html>');
      // anything else: never answered
    });
    server.on('connection', (s: Socket) => sockets.add(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      assert.deepEqual(await runPrometheusCheck(spec('up', { url: `${base}/html` })), {
        ok: false,
        detail: 'HTTP 200: not a Prometheus API answer',
      });
      assert.deepEqual(await runPrometheusCheck(spec('up', { url: base, timeoutMs: 200 })), {
        ok: false,
        detail: 'no answer within 200ms',
      });
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('fails once Prometheus is dead', async () => {
    const check = spec('up{job="prom"} == 1');
    assert.equal((await runPrometheusCheck(check)).ok, true);
    await prom.stop();
    assert.deepEqual(await runPrometheusCheck(check), {
      ok: false,
      detail: 'connection refused (ECONNREFUSED)',
    });
  });
});
