/**
 * The health runner with real checks against a real loopback server: the
 * report's rules, transitions once each, no overlapping runs, a clean stop.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../../agent/log.js';
import { HealthRunner, type HealthTransition } from '../../../agent/health/runner.js';
import type { HealthCheckResult, HealthCheckSpec } from '../../../agent/health/types.js';

let server: Server;
let base = '';
let status = 200;
/** Requests to /held wait here until released. */
const held: ServerResponse[] = [];
const heldWaiters: Array<() => void> = [];
let heldRequests = 0;

before(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/held') {
      heldRequests++;
      held.push(res);
      for (const w of heldWaiters.splice(0)) w();
      return;
    }
    res.writeHead(status).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const http = (name: string, path = '/', intervalMs = 30_000): HealthCheckSpec => ({
  name,
  kind: 'http',
  intervalMs,
  timeoutMs: 10_000,
  url: `${base}${path}`,
  expectStatus: 200,
});

function runner(checks: HealthCheckSpec[], clock?: () => number) {
  const transitions: HealthTransition[] = [];
  const results: HealthCheckResult[] = [];
  const listeners: Array<() => void> = [];
  const r = new HealthRunner({
    checks,
    log: silentLogger,
    ...(clock ? { clock } : {}),
    onResult: (x) => {
      results.push(x);
      for (const l of listeners.splice(0)) l();
    },
    onTransition: (t) => transitions.push(t),
  });
  /** Resolves once `pred` holds for the results so far. */
  const until = async (pred: () => boolean) => {
    while (!pred()) await new Promise<void>((res) => listeners.push(res));
  };
  return { r, transitions, results, until };
}

describe('health runner', () => {
  it('is ok with no checks configured', async () => {
    const { r } = runner([]);
    assert.deepEqual(r.latest(), { ok: true, at: null, checks: [] });
    assert.deepEqual(await r.check(), { ok: true, at: null, checks: [] });
  });

  it('is not ok until every configured check has a result', () => {
    const { r } = runner([http('a'), http('b')]);
    assert.deepEqual(r.latest(), { ok: false, at: null, checks: [], pending: ['a', 'b'] });
  });

  it('check() runs every check now; a verdict change is reported once, not once per run', async () => {
    let now = 1_000;
    const { r, transitions } = runner([http('web')], () => now);
    status = 200;
    let report = await r.check();
    assert.deepEqual(report, {
      ok: true,
      at: 1_000,
      checks: [{ name: 'web', kind: 'http', ok: true, detail: 'HTTP 200', at: 1_000, durationMs: 0 }],
    });
    status = 500;
    now = 2_000;
    report = await r.check();
    assert.equal(report.ok, false);
    assert.equal(report.at, 2_000);
    assert.equal(report.checks[0]?.detail, 'HTTP 500, expected 200');
    await r.check();
    await r.check();
    status = 200;
    assert.equal((await r.check()).ok, true);
    await r.check();
    assert.deepEqual(transitions, [
      { type: 'health_failing', check: 'web', kind: 'http', detail: 'HTTP 500, expected 200' },
      { type: 'health_recovered', check: 'web', kind: 'http', detail: 'HTTP 200' },
    ]);
  });

  it('reports a check that fails from its first run (and none that passes from its first)', async () => {
    const { r, transitions } = runner([
      http('ok'),
      { name: 'gone', kind: 'command', intervalMs: 30_000, timeoutMs: 5_000, argv: ['false'], cwd: '/' },
    ]);
    status = 200;
    const report = await r.check();
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.checks.map((c) => [c.name, c.ok, c.detail]),
      [
        ['ok', true, 'HTTP 200'],
        ['gone', false, 'exit 1'],
      ],
    );
    assert.deepEqual(transitions, [
      { type: 'health_failing', check: 'gone', kind: 'command', detail: 'exit 1' },
    ]);
  });

  it('runs each check on its interval and never starts a run while one is in flight; stop aborts it', async () => {
    heldRequests = 0;
    const { r, results, until, transitions } = runner([http('slow', '/held', 20), http('fast', '/', 20)]);
    status = 200;
    r.start();
    r.start(); // idempotent
    const explicit = r.check(); // joins the runs in flight
    // five runs of `fast` prove that at least four intervals of `slow` passed while its first run hung
    await until(() => results.filter((x) => x.name === 'fast').length >= 5);
    assert.equal(heldRequests, 1);
    assert.equal(r.latest().ok, false);
    assert.deepEqual(r.latest().pending, ['slow']);
    held.shift()?.writeHead(200).end();
    const report = await explicit;
    assert.equal(report.checks.find((c) => c.name === 'slow')?.ok, true);
    // the next run of `slow` hangs again; stopping aborts it and records nothing for it
    while (heldRequests < 2) await new Promise<void>((res) => heldWaiters.push(res));
    const before = results.length;
    await r.stop();
    assert.equal(results.length, before);
    assert.deepEqual(transitions, []);
    assert.equal(r.latest().ok, true);
    r.start(); // nothing after a stop
    assert.equal(heldRequests, 2);
  });

  it('check({fresh: true}) does not join a run already in flight: it waits for it and runs again', async () => {
    heldRequests = 0;
    const { r } = runner([http('fresh', '/held')]);
    const waitHeld = async (n: number) => {
      while (heldRequests < n) await new Promise<void>((res) => heldWaiters.push(res));
    };
    const stale = r.check(); // run A: started before the caller's change
    await waitHeld(1);
    const fresh = r.check({ fresh: true });
    held.pop()?.writeHead(500).end(); // A answers for the old state
    assert.equal((await stale).ok, false);
    const first = await Promise.race([fresh.then(() => 'joined A'), waitHeld(2).then(() => 'ran B')]);
    assert.equal(first, 'ran B', 'a fresh check starts its own run');
    held.pop()?.writeHead(200).end();
    assert.equal((await fresh).ok, true);
    await r.stop();
  });
});
