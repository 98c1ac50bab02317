import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { type IncomingHttpHeaders, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { type AlertOutcome, type AlertPayload, Alerter, type AlerterOptions } from '../../../agent/alerts.js';
import type { AlertConfig } from '../../../agent/config.js';
import type { AgentEvent } from '../../../agent/events.js';
import type { Logger } from '../../../agent/log.js';
import { sign as signBody, verify as verifySignature } from '../../../core/hmac.js';

// ---------------------------------------------------------------------------
// A real HTTP receiver
// ---------------------------------------------------------------------------

interface Hit {
  headers: IncomingHttpHeaders;
  raw: Buffer;
  payload: AlertPayload;
  /** performance.now() when the request body had arrived. */
  at: number;
}

/** What the receiver does with its n-th request (1-based): answer, or hold the socket and never answer. */
type Reply = { status: number; headers?: Record<string, string> } | 'hang';

interface Receiver {
  url: string;
  hits: Hit[];
  /** Resolves once `n` requests have arrived. */
  waitFor(n: number): Promise<void>;
  close(): Promise<void>;
}

async function startReceiver(reply: (n: number) => Reply = () => ({ status: 200 })): Promise<Receiver> {
  const hits: Hit[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const server: Server = createServer((req, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      hits.push({
        headers: req.headers,
        raw,
        payload: JSON.parse(raw.toString('utf8')),
        at: performance.now(),
      });
      for (const w of waiters.filter((w) => hits.length >= w.n)) w.resolve();
      const r = reply(hits.length);
      if (r !== 'hang') res.writeHead(r.status, r.headers).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/steward?token=TOPSECRET-${port}`,
    hits,
    waitFor: (n) =>
      hits.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A URL where nothing listens (connection refused at once). */
async function deadUrl(): Promise<string> {
  const r = await startReceiver();
  await r.close();
  return r.url;
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const SECRET = 'alert-hmac-key';
const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const FAST = { attempts: 3, baseMs: 5, maxMs: 20 };

function receiverConfig(url: string, over: Partial<AlertConfig> = {}): AlertConfig {
  return {
    url,
    secret: SECRET,
    events: [
      'mass_drift_frozen',
      'frozen',
      'unfrozen',
      'resource_stuck',
      'resource_recovered',
      'revision_rejected',
      'revision_recovered',
      'source_unreachable',
      'source_recovered',
    ],
    timeoutMs: 2_000,
    ...over,
  };
}

/** A pino logger whose lines are kept, to prove that URLs and secrets never reach them. */
function captureLog(): { log: Logger; lines: string[]; waitFor(text: string): Promise<void> } {
  const lines: string[] = [];
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  const log = pino(
    { level: 'debug' },
    {
      write(line: string) {
        lines.push(line);
        for (const w of waiters.filter((w) => line.includes(w.text))) w.resolve();
      },
    },
  );
  const waitFor = (text: string): Promise<void> =>
    lines.some((l) => l.includes(text))
      ? Promise.resolve()
      : new Promise((resolve) => waiters.push({ text, resolve }));
  return { log, lines, waitFor };
}

interface Setup {
  alerter: Alerter;
  outcomes: Array<[string, AlertOutcome]>;
  lines: string[];
  waitForLog(text: string): Promise<void>;
}

type TestContext = { after: (fn: () => Promise<void>) => void };

/** An Alerter that records outcomes and logs; closed (before the receivers) when the test ends. */
function setup(t: TestContext, receivers: Receiver[], opts: Partial<AlerterOptions> = {}): Setup {
  const outcomes: Array<[string, AlertOutcome]> = [];
  const { log, lines, waitFor } = captureLog();
  const alerter = new Alerter({
    receivers: receivers.map((r) => receiverConfig(r.url)),
    log,
    clock: () => NOW,
    retry: FAST,
    revision: () => 'c0ffee0000000000000000000000000000000000',
    onOutcome: (event, outcome) => outcomes.push([event, outcome]),
    ...opts,
  });
  t.after(async () => {
    await alerter.close();
    await Promise.all(receivers.map((r) => r.close()));
    for (const line of lines) {
      for (const r of receivers) assert.ok(!line.includes(r.url) && !line.includes('TOPSECRET'), line);
      assert.ok(!line.includes(SECRET), line);
    }
  });
  return { alerter, outcomes, lines, waitForLog: waitFor };
}

const ev = {
  unreachable: { type: 'source_unreachable', error: 'connect ECONNREFUSED', code: 'SOURCE_UNREACHABLE' },
  sourceRecovered: { type: 'source_recovered', sha: 'a'.repeat(40) },
  massFrozen: { type: 'mass_drift_frozen', reason: '60 of 100 resources would change', sha: 'b'.repeat(40) },
  frozen: { type: 'frozen', reason: 'incident 42 — café ☕', by: 'admin-api' },
  unfrozen: { type: 'unfrozen', by: 'admin-api', approveRevision: null },
  stuck: (key: string): AgentEvent => ({ type: 'resource_stuck', key, id: `${key}-id`, attempts: 3 }),
  recovered: (key: string): AgentEvent => ({ type: 'resource_recovered', key, id: null }),
  rejected: (sha: string, problems = 1): AgentEvent => ({
    type: 'revision_rejected',
    sha,
    problems: Array.from({ length: problems }, (_, i) => ({
      file: 'fleet/web.yaml',
      line: i + 1,
      col: 3,
      message: `bad ${i}`,
    })),
  }),
  accepted: { type: 'revision_accepted', sha: 'd'.repeat(40), resources: 7 },
  mode: { type: 'mode_changed', mode: 'enforce', by: 'admin-api' },
  released: { type: 'resource_released', key: 'File/motd' },
} satisfies Record<string, AgentEvent | ((...a: never[]) => AgentEvent)>;

const summary = (hits: Hit[]): string[] =>
  hits.map(
    (h) => `${h.payload.event}:${h.payload.status}${h.payload.resolves ? `<${h.payload.resolves}` : ''}`,
  );

// ---------------------------------------------------------------------------
// Transitions and payloads
// ---------------------------------------------------------------------------

describe('Alerter: transitions', () => {
  it('sends each transition exactly once, with a resolved alert only for an open problem', async (t) => {
    const r = await startReceiver();
    const { alerter, outcomes } = setup(t, [r]);
    const events: AgentEvent[] = [
      ev.sourceRecovered, // nothing open: nothing
      ev.unreachable,
      ev.unreachable, // already open: nothing
      ev.sourceRecovered,
      ev.sourceRecovered, // already resolved: nothing
      ev.massFrozen,
      ev.massFrozen,
      ev.unfrozen,
      ev.unfrozen, // nothing open: nothing
      ev.frozen,
      ev.unfrozen,
      ev.stuck('File/a'),
      ev.stuck('File/a'),
      ev.stuck('File/b'),
      ev.recovered('File/a'),
      ev.recovered('File/c'), // never stuck: nothing
      ev.accepted, // nothing rejected: nothing
      ev.rejected('1'.repeat(40)),
      ev.rejected('1'.repeat(40)),
      ev.rejected('2'.repeat(40)), // another bad revision: news
      ev.accepted,
      ev.accepted,
      ev.mode,
      ev.released,
    ];
    for (const e of events) alerter.handle(e);
    await alerter.drain();
    assert.deepEqual(summary(r.hits), [
      'source_unreachable:firing',
      'source_recovered:resolved<source_unreachable',
      'mass_drift_frozen:firing',
      'unfrozen:resolved<mass_drift_frozen',
      'frozen:firing',
      'unfrozen:resolved<frozen',
      'resource_stuck:firing',
      'resource_stuck:firing',
      'resource_recovered:resolved<resource_stuck',
      'revision_rejected:firing',
      'revision_rejected:firing',
      'revision_recovered:resolved<revision_rejected',
    ]);
    assert.deepEqual(
      r.hits.filter((h) => h.payload.event.startsWith('resource_')).map((h) => h.payload.details['key']),
      ['File/a', 'File/b', 'File/a'],
    );
    assert.equal(outcomes.length, r.hits.length);
    assert.ok(outcomes.every(([, o]) => o === 'sent'));
    assert.deepEqual(
      outcomes.map(([e]) => e),
      r.hits.map((h) => h.payload.event),
    );
  });

  it('fail-closed events: state unwritable and observe failing once each, resolved once; every mass release', async (t) => {
    const r = await startReceiver();
    const { alerter } = setup(t, [r], {
      receivers: [receiverConfig(r.url, { events: ['state_unwritable', 'observe_failing', 'mass_release'] })],
    });
    const events: AgentEvent[] = [
      { type: 'state_recovered' }, // nothing open: nothing
      { type: 'state_unwritable', error: 'ENOSPC: no space left on device' },
      { type: 'state_unwritable', error: 'ENOSPC: no space left on device' },
      { type: 'observe_failing', count: 3, codes: ['EACCES'] },
      { type: 'observe_failing', count: 4, codes: ['EACCES'] }, // still failing: nothing
      { type: 'state_recovered' },
      { type: 'observe_recovered' },
      { type: 'observe_recovered' },
      { type: 'mass_release', sha: 'e'.repeat(40), released: 60, managedBefore: 100 },
      { type: 'approval_spent', sha: 'e'.repeat(40), resources: 60 },
    ];
    for (const e of events) alerter.handle(e);
    await alerter.drain();
    assert.deepEqual(summary(r.hits), [
      'state_unwritable:firing',
      'observe_failing:firing',
      'state_recovered:resolved<state_unwritable',
      'observe_recovered:resolved<observe_failing',
      'mass_release:firing',
    ]);
    assert.equal(r.hits[0]!.payload.severity, 'critical');
    assert.match(r.hits[4]!.payload.message, /no longer manages 60 of 100 resources/);
  });

  it('a freeze open before a restart is still resolved (initiallyOpen)', async (t) => {
    const r = await startReceiver();
    const { alerter } = setup(t, [r], { initiallyOpen: [{ event: 'frozen' }] });
    alerter.handle(ev.frozen); // already open: nothing
    alerter.handle(ev.unfrozen);
    await alerter.drain();
    assert.deepEqual(summary(r.hits), ['unfrozen:resolved<frozen']);
  });

  it('sends a complete, signed payload with the documented headers', async (t) => {
    const r = await startReceiver();
    const { alerter } = setup(t, [r]);
    alerter.handle(ev.unreachable);
    alerter.handle(ev.frozen);
    await alerter.drain();
    const [hit, frozen] = r.hits;
    assert.ok(hit && frozen);
    assert.deepEqual(hit.payload, {
      event: 'source_unreachable',
      status: 'firing',
      severity: 'critical',
      message: 'the Git source cannot be read: connect ECONNREFUSED. steward keeps the last good revision.',
      at: '2026-03-01T12:00:00.000Z',
      revision: 'c0ffee0000000000000000000000000000000000',
      details: { error: 'connect ECONNREFUSED', code: 'SOURCE_UNREACHABLE' },
    });
    assert.equal(hit.headers['content-type'], 'application/json');
    assert.equal(hit.headers['user-agent'], 'steward');
    assert.equal(hit.headers['x-steward-event'], 'source_unreachable');
    assert.match(
      String(hit.headers['x-steward-delivery']),
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    assert.notEqual(hit.headers['x-steward-delivery'], frozen.headers['x-steward-delivery']);
    // The signature covers the exact bytes, non-ASCII included.
    assert.equal(frozen.payload.severity, 'warning');
    assert.match(frozen.payload.message, /café ☕/);
    for (const h of r.hits) {
      assert.equal(h.headers['x-steward-signature'], signBody(h.raw, SECRET));
      assert.ok(verifySignature(h.raw, h.headers['x-steward-signature'] as string, SECRET));
      assert.ok(verifySignature(h.raw.toString('utf8'), h.headers['x-steward-signature'] as string, SECRET));
      assert.ok(!verifySignature(h.raw, h.headers['x-steward-signature'] as string, 'other-key'));
    }
  });

  it('sends unsigned alerts to a receiver without a secret', async (t) => {
    const r = await startReceiver();
    const { log } = captureLog();
    const alerter = new Alerter({ receivers: [receiverConfig(r.url, { secret: null })], log, retry: FAST });
    t.after(async () => {
      await alerter.close();
      await r.close();
    });
    alerter.handle(ev.unreachable);
    await alerter.drain();
    assert.equal(r.hits.length, 1);
    assert.equal(r.hits[0]?.headers['x-steward-signature'], undefined);
    assert.equal(r.hits[0]?.payload.revision, null);
  });

  it('lists at most 50 problems of a rejected revision as file:line:col: message', async (t) => {
    const r = await startReceiver();
    const { alerter } = setup(t, [r]);
    alerter.handle(ev.rejected('e'.repeat(40), 60));
    await alerter.drain();
    const p = r.hits[0]?.payload;
    assert.ok(p);
    assert.equal(p.severity, 'critical');
    assert.equal(p.details['problemCount'], 60);
    assert.equal(p.details['sha'], 'e'.repeat(40));
    const problems = p.details['problems'] as string[];
    assert.equal(problems.length, 50);
    assert.equal(problems[0], 'fleet/web.yaml:1:3: bad 0');
    assert.equal(problems[49], 'fleet/web.yaml:50:3: bad 49');
  });

  it('never throws from handle(), even when its callbacks do', async (t) => {
    const r = await startReceiver();
    const { alerter } = setup(t, [r], {
      revision: () => {
        throw new Error('boom');
      },
      onOutcome: () => {
        throw new Error('boom');
      },
    });
    assert.doesNotThrow(() => alerter.handle(undefined as unknown as AgentEvent));
    assert.doesNotThrow(() => alerter.handle({ type: 'no_such_event' } as unknown as AgentEvent));
    alerter.handle(ev.unreachable);
    await alerter.drain();
    assert.equal(r.hits.length, 1);
    assert.equal(r.hits[0]?.payload.revision, null);
  });
});

// ---------------------------------------------------------------------------
// Filtering
// ---------------------------------------------------------------------------

describe('Alerter: receiver.events', () => {
  it('sends a receiver only its events, and the recoveries of the problems it lists', async (t) => {
    const [a, b, c, d] = await Promise.all([
      startReceiver(),
      startReceiver(),
      startReceiver(),
      startReceiver(),
    ]);
    assert.ok(a && b && c && d);
    const { log } = captureLog();
    const alerter = new Alerter({
      receivers: [
        receiverConfig(a.url, { events: ['source_unreachable'] }),
        receiverConfig(b.url, { events: ['source_recovered'] }),
        receiverConfig(c.url, { events: ['frozen'] }),
        receiverConfig(d.url, { events: ['revision_rejected'] }),
      ],
      log,
      retry: FAST,
    });
    t.after(async () => {
      await alerter.close();
      await Promise.all([a, b, c, d].map((r) => r.close()));
    });
    for (const e of [ev.unreachable, ev.sourceRecovered, ev.massFrozen, ev.unfrozen, ev.frozen, ev.unfrozen])
      alerter.handle(e);
    alerter.handle(ev.rejected('f'.repeat(40)));
    alerter.handle(ev.accepted);
    await alerter.drain();
    assert.deepEqual(summary(a.hits), [
      'source_unreachable:firing',
      'source_recovered:resolved<source_unreachable',
    ]);
    assert.deepEqual(summary(b.hits), ['source_recovered:resolved<source_unreachable']);
    assert.deepEqual(summary(c.hits), ['frozen:firing', 'unfrozen:resolved<frozen']);
    assert.deepEqual(summary(d.hits), [
      'revision_rejected:firing',
      'revision_recovered:resolved<revision_rejected',
    ]);
  });
});

// ---------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------

describe('Alerter: delivery and retries', () => {
  it('retries 503 with backoff and delivers once, with the same delivery id on every attempt', async (t) => {
    const r = await startReceiver((n) => ({ status: n <= 2 ? 503 : 200 }));
    const { alerter, outcomes } = setup(t, [r], { retry: { attempts: 5, baseMs: 5, maxMs: 20 } });
    alerter.handle(ev.unreachable);
    await alerter.drain();
    assert.equal(r.hits.length, 3);
    const ids = new Set(r.hits.map((h) => h.headers['x-steward-delivery']));
    assert.equal(ids.size, 1);
    assert.deepEqual(outcomes, [['source_unreachable', 'sent']]);
  });

  it('does not retry a 400: failed after one attempt', async (t) => {
    const r = await startReceiver(() => ({ status: 400 }));
    const { alerter, outcomes, lines } = setup(t, [r]);
    alerter.handle(ev.unreachable);
    await alerter.drain();
    assert.equal(r.hits.length, 1);
    assert.deepEqual(outcomes, [['source_unreachable', 'failed']]);
    assert.ok(lines.some((l) => l.includes('receiver #1') && l.includes('HTTP 400')));
  });

  it('retries 408 and 429; gives up after `attempts` on persistent 5xx', async (t) => {
    const flaky = await startReceiver((n) => ({ status: [408, 429, 200][n - 1] ?? 200 }));
    const broken = await startReceiver(() => ({ status: 500 }));
    const { alerter, outcomes } = setup(t, [flaky, broken]);
    alerter.handle(ev.unreachable);
    await alerter.drain();
    assert.equal(flaky.hits.length, 3);
    assert.equal(broken.hits.length, FAST.attempts);
    assert.deepEqual(outcomes.map(([, o]) => o).sort(), ['failed', 'sent']);
  });

  it('honours Retry-After seconds', async (t) => {
    const r = await startReceiver((n) =>
      n === 1 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 },
    );
    // random() = 0: without Retry-After the retry would be immediate.
    const { alerter, outcomes } = setup(t, [r], {
      random: () => 0,
      retry: { attempts: 2, baseMs: 5, maxMs: 5_000 },
    });
    alerter.handle(ev.unreachable);
    await alerter.drain();
    const [first, second] = r.hits;
    assert.ok(first && second);
    assert.ok(second.at - first.at >= 900, `waited ${second.at - first.at} ms`);
    assert.deepEqual(outcomes, [['source_unreachable', 'sent']]);
  });

  it('caps Retry-After at retry.maxMs', async (t) => {
    const r = await startReceiver((n) =>
      n === 1 ? { status: 429, headers: { 'retry-after': '3600' } } : { status: 200 },
    );
    const { alerter, outcomes } = setup(t, [r]);
    alerter.handle(ev.unreachable);
    await alerter.drain(10_000);
    assert.equal(r.hits.length, 2);
    assert.deepEqual(outcomes, [['source_unreachable', 'sent']]);
  });

  it('a receiver that never answers blocks neither handle() nor the other receivers', async (t) => {
    const hang = await startReceiver(() => 'hang');
    const good = await startReceiver();
    const { log, lines } = captureLog();
    const outcomes: AlertOutcome[] = [];
    const alerter = new Alerter({
      receivers: [receiverConfig(hang.url, { timeoutMs: 300 }), receiverConfig(good.url)],
      log,
      retry: { attempts: 2, baseMs: 5, maxMs: 5 },
      onOutcome: (_, o) => outcomes.push(o),
    });
    t.after(async () => {
      await alerter.close();
      await Promise.all([hang.close(), good.close()]);
    });

    const returned: unknown = alerter.handle(ev.unreachable);
    // Synchronous: nothing returned to await, and nothing was sent while handle() ran (it only queues).
    assert.equal(returned, undefined);
    assert.equal(hang.hits.length + good.hits.length, 0);

    await Promise.all([good.waitFor(1), hang.waitFor(1)]);
    assert.ok(!outcomes.includes('failed'), 'the second receiver got its alert while the first still hung');

    await alerter.drain();
    assert.equal(hang.hits.length, 2);
    assert.equal(good.hits.length, 1);
    assert.deepEqual(outcomes.sort(), ['failed', 'sent']);
    assert.ok(lines.some((l) => l.includes('receiver #1') && l.includes('timed out')));
    assert.ok(lines.every((l) => !l.includes(hang.url) && !l.includes('TOPSECRET')));
  });

  it('keeps one receiver’s alerts in order', async (t) => {
    const r = await startReceiver((n) => ({ status: n % 2 === 1 ? 503 : 200 }));
    const { alerter } = setup(t, [r]);
    for (const k of ['a', 'b', 'c', 'd']) alerter.handle(ev.stuck(k));
    await alerter.drain();
    const keys = r.hits.filter((_, i) => i % 2 === 1).map((h) => h.payload.details['key']);
    assert.deepEqual(keys, ['a', 'b', 'c', 'd']);
  });
});

// ---------------------------------------------------------------------------
// Queue bound
// ---------------------------------------------------------------------------

describe('Alerter: queue bound', () => {
  it('drops the oldest alerts of a receiver that is down, and counts them', async (t) => {
    const url = await deadUrl();
    const outcomes: AlertOutcome[] = [];
    const { log, lines } = captureLog();
    const alerter = new Alerter({
      receivers: [receiverConfig(url)],
      log,
      queueLimit: 3,
      retry: { attempts: 2, baseMs: 5, maxMs: 5 },
      onOutcome: (_, o) => outcomes.push(o),
    });
    t.after(() => alerter.close());
    for (let i = 0; i < 10; i++) alerter.handle(ev.stuck(`File/k${i}`));
    await alerter.drain();
    assert.equal(outcomes.filter((o) => o === 'dropped').length, 7);
    assert.equal(outcomes.filter((o) => o === 'failed').length, 3);
    const warnings = lines.filter((l) => l.includes('full: dropped the oldest'));
    assert.equal(warnings.length, 7);
    const hostPort = new URL(url).host;
    assert.ok(lines.every((l) => !l.includes(hostPort) && !l.includes('TOPSECRET')));
    assert.ok(lines.some((l) => l.includes('ECONNREFUSED')));
  });

  it('the alerts that remain are the newest, in order', async (t) => {
    const r = await startReceiver();
    const { alerter, outcomes } = setup(t, [r], { queueLimit: 3 });
    for (let i = 0; i < 10; i++) alerter.handle(ev.stuck(`File/k${i}`));
    await alerter.drain();
    assert.deepEqual(
      r.hits.map((h) => h.payload.details['key']),
      ['File/k7', 'File/k8', 'File/k9'],
    );
    assert.deepEqual(
      outcomes.map(([, o]) => o),
      [...Array(7).fill('dropped'), 'sent', 'sent', 'sent'],
    );
  });
});

// ---------------------------------------------------------------------------
// close()
// ---------------------------------------------------------------------------

describe('Alerter: close', () => {
  it('drops what is in flight or queued, and leaves no timers behind', async () => {
    const refTimers = (): number => process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
    const before = refTimers();
    const hang = await startReceiver(() => 'hang');
    const slow = await startReceiver(() => ({ status: 503 }));
    const { log, waitFor } = captureLog();
    const outcomes: AlertOutcome[] = [];
    const alerter = new Alerter({
      receivers: [receiverConfig(hang.url, { timeoutMs: 60_000 }), receiverConfig(slow.url)],
      log,
      // A minute of backoff after the first 503: close() must cancel it.
      random: () => 0.99,
      retry: { attempts: 5, baseMs: 60_000, maxMs: 60_000 },
      onOutcome: (_, o) => outcomes.push(o),
    });
    alerter.handle(ev.unreachable);
    alerter.handle(ev.frozen);
    await Promise.all([hang.waitFor(1), waitFor('"waitMs":59400')]);
    assert.ok(refTimers() <= before + 0, 'backoff timers are unref’d');

    const started = performance.now();
    await alerter.close();
    assert.ok(performance.now() - started < 1_000, 'close() does not wait for timeouts or backoff');
    assert.deepEqual(outcomes, Array(4).fill('dropped'));

    alerter.handle(ev.massFrozen); // after close: ignored
    await alerter.drain();
    assert.equal(outcomes.length, 4);
    await Promise.all([hang.close(), slow.close()]);
    assert.equal(hang.hits.length, 1);
    assert.equal(slow.hits.length, 1);
    assert.ok(refTimers() <= before);
  });

  it('drain() keeps a process alive through an unref’d backoff wait until the alert is sent', async (t) => {
    const r = await startReceiver((n) => ({ status: n === 1 ? 503 : 200 }));
    t.after(() => r.close());
    const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        ['--import', 'tsx', 'test/helpers/alert-drain.ts', r.url],
        (err, out) =>
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: out }),
      );
      child.stdin?.end();
    });
    assert.equal(stdout, 'drained sent\n');
    assert.equal(code, 0);
    assert.equal(r.hits.length, 2);
  });

  it('drain(timeoutMs) gives up waiting after timeoutMs', async (t) => {
    const hang = await startReceiver(() => 'hang');
    const { alerter } = setup(t, [hang], { receivers: [receiverConfig(hang.url, { timeoutMs: 60_000 })] });
    alerter.handle(ev.unreachable);
    await hang.waitFor(1);
    const started = performance.now();
    await alerter.drain(50);
    assert.ok(performance.now() - started < 1_000);
  });
});
