/**
 * Freeze with an end, change windows and the window override, end to end: a
 * daemon on a real loopback socket, a real Git repository, real files, a real
 * alert receiver. One freeze ends in real time (`for: 2s`); the rest are
 * driven cycle by cycle, or with the injected clock of the in-process harness.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AgentEvent } from '../../agent/events.js';
import { FileStateStore } from '../../agent/state/file-store.js';
import type { AuditRecord, PersistedState } from '../../agent/state/types.js';
import { isStewardError } from '../../core/errors.js';
import { createOneFileRepo, type DaemonHarness, startOneFileDaemon } from '../helpers/daemon.js';
import { makeHarness } from '../helpers/harness.js';

/** A deny window that is open at any moment: it starts every minute and lasts an hour. */
const ALWAYS_DENIED = 'windows:\n  - { kind: deny, schedule: "* * * * *", duration: 1h }';

/** Runs one cycle now and waits for it. */
async function cycle(d: DaemonHarness): Promise<void> {
  assert.equal((await d.req('POST', '/v1/reconcile')).status, 202);
  await d.daemon.agent.idle();
}

/** The next agent event of `type` (or one already passing `pred`). */
function nextEvent(d: DaemonHarness, pred: (e: AgentEvent) => boolean): Promise<AgentEvent> {
  return new Promise((resolve) => d.daemon.agent.onEvent((e) => pred(e) && resolve(e)));
}

/** An alert receiver on loopback that keeps every payload. */
async function alertReceiver(t: { after: (fn: () => Promise<void>) => void }) {
  const got: Array<{ event: string; status: string; details: Record<string, unknown> }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => {
      got.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`, got };
}

test('a freeze {for: "2s"} ends by itself: one unfrozen alert by expiry, status and audit say so, the agent acts again', async (t) => {
  const receiver = await alertReceiver(t);
  const d = await startOneFileDaemon(t, {
    extra: `alerts:\n  - { url: ${JSON.stringify(receiver.url)}, events: [frozen] }`,
  });
  const ended = nextEvent(d, (e) => e.type === 'unfrozen');
  const r = await d.req('POST', '/v1/freeze', { body: { reason: 'deploy window', for: '2s' } });
  assert.equal(r.status, 200, r.text);
  const frozen = (r.json as { freeze: { frozen: boolean; until: string; since: string } }).freeze;
  assert.equal(frozen.frozen, true);
  assert.equal(Date.parse(frozen.until) - Date.parse(frozen.since), 2000);
  await cycle(d);
  assert.equal(existsSync(join(d.root, 'a.conf')), false, 'nothing applied while frozen');

  assert.deepEqual(await ended, { type: 'unfrozen', by: 'expiry', approveRevision: null });
  const metrics = (await d.req('GET', '/metrics', { auth: false })).text;
  assert.match(metrics, /^steward_frozen 0$/m, 'the metric follows the expiry, before any cycle');
  await d.daemon.alerter.drain(5_000);
  const unfrozen = receiver.got.filter((a) => a.event === 'unfrozen');
  assert.equal(unfrozen.length, 1, JSON.stringify(receiver.got));
  assert.equal(unfrozen[0]?.details['by'], 'expiry');
  assert.deepEqual(
    receiver.got.map((a) => `${a.event}:${a.status}`),
    ['frozen:firing', 'unfrozen:resolved'],
  );
  const status = (await d.req('GET', '/v1/status')).json as { freeze: { frozen: boolean; until: null } };
  assert.deepEqual([status.freeze.frozen, status.freeze.until], [false, null]);

  await cycle(d);
  assert.equal(existsSync(join(d.root, 'a.conf')), true, 'acts once the freeze has ended');
  const audit = (await d.req('GET', '/v1/audit')).json as { records: AuditRecord[] };
  assert.deepEqual(
    audit.records.map((a) => a.outcome),
    ['applied', 'started'],
    'an expiry approves nothing and is no action',
  );
});

test('freeze and override bodies: an end in the past, both ends, a zero or too long duration are 400 with what to fix', async (t) => {
  const d = await startOneFileDaemon(t);
  const cases: Array<[string, object, RegExp]> = [
    [
      '/v1/freeze',
      { reason: 'x', for: '1s', until: '2099-01-01T00:00:00Z' },
      /give "until" or "for", not both/,
    ],
    [
      '/v1/freeze',
      { reason: 'x', until: '2000-01-01T00:00:00Z' },
      /until: 2000-01-01T00:00:00\.000Z is not in the future/,
    ],
    [
      '/v1/freeze',
      { reason: 'x', until: '2099-01-01 00:00' },
      /until: expected an ISO 8601 time with a zone/,
    ],
    ['/v1/freeze', { reason: 'x', for: '0s' }, /for: must be longer than 0s/],
    ['/v1/freeze', { reason: 'x', for: '30' }, /for: invalid duration "30": a unit is required/],
    ['/v1/freeze', { reason: 'x', for: '721h' }, /for: at most 720h from now/],
    ['/v1/window-override', { reason: 'x', for: '25h' }, /for: at most 24h from now/],
    ['/v1/window-override', { for: '1h' }, /reason/],
  ];
  for (const [path, body, message] of cases) {
    const r = await d.req('POST', path, { body });
    assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}: ${r.text}`);
    const e = (r.json as { error: { code: string; message: string } }).error;
    assert.equal(e.code, 'BAD_REQUEST');
    assert.match(e.message, message);
  }
  const status = (await d.req('GET', '/v1/status')).json as { freeze: { frozen: boolean } };
  assert.equal(status.freeze.frozen, false, 'no refused request froze anything');
  const none = await d.req('POST', '/v1/window-override', { body: { reason: 'x', for: '1h' } });
  assert.equal(none.status, 409);
  assert.equal((none.json as { error: { code: string } }).error.code, 'NO_CHANGE_WINDOWS');
  assert.equal((await d.req('POST', '/v1/window-override', { auth: false, body: {} })).status, 401);
  const doc = (await d.req('GET', '/openapi.json', { auth: false })).json as {
    paths: Record<string, Record<string, { security?: unknown }>>;
  };
  assert.deepEqual(doc.paths['/v1/window-override']?.['post']?.security, [{ bearer: [] }]);
});

test('a deny window open now holds every action, drift is still reported; an override with a reason acts and is audited', async (t) => {
  const d = await startOneFileDaemon(t, { extra: ALWAYS_DENIED });
  await cycle(d);
  assert.equal(existsSync(join(d.root, 'a.conf')), false, 'nothing created inside the deny window');
  const drift = (await d.req('GET', '/v1/drift')).json as { drift: Array<{ name: string; held: string }> };
  assert.deepEqual(
    drift.drift.map((x) => [x.name, x.held]),
    [['a', 'window']],
  );
  let status = (await d.req('GET', '/v1/status')).json as {
    window: { open: boolean; reason: string; until: string | null; override: unknown };
    lastCycle: { applied: number; held: Record<string, number> };
  };
  assert.equal(status.window.open, false);
  assert.match(status.window.reason, /inside deny window "\* \* \* \* \*"/);
  assert.equal(status.window.until, null, 'a window that restarts every minute has no end in sight');
  assert.equal(status.window.override, null);
  assert.deepEqual([status.lastCycle.applied, status.lastCycle.held], [0, { window: 1 }]);
  const metrics = (await d.req('GET', '/metrics', { auth: false })).text;
  assert.match(metrics, /^steward_window_open 0$/m);

  const o = await d.req('POST', '/v1/window-override', { body: { reason: 'hotfix INC-7', for: '30m' } });
  assert.equal(o.status, 200, o.text);
  status = o.json as typeof status;
  assert.equal(status.window.open, true);
  assert.match(status.window.reason, /override by admin-api: hotfix INC-7/);
  assert.deepEqual((status.window.override as { reason: string; by: string }).reason, 'hotfix INC-7');
  await cycle(d);
  assert.equal(existsSync(join(d.root, 'a.conf')), true, 'the override let the agent act');
  assert.match((await d.req('GET', '/metrics', { auth: false })).text, /^steward_window_open 1$/m);
  const audit = (await d.req('GET', '/v1/audit')).json as { records: AuditRecord[] };
  assert.deepEqual(
    audit.records.map((a) => a.outcome),
    ['applied', 'started', 'window-override'],
  );
  const rec = audit.records[2]!;
  assert.deepEqual(
    [rec.kind, rec.name, rec.reason, rec.by, rec.patch],
    ['Steward', 'window-override', 'hotfix INC-7', 'admin-api', []],
  );
  assert.equal(Date.parse(rec.until!) - Date.parse(rec.at), 30 * 60_000);
});

test('a window override never lifts a freeze or observe mode', async (t) => {
  const d = await startOneFileDaemon(t, { extra: ALWAYS_DENIED, mode: 'observe' });
  await d.req('POST', '/v1/window-override', { body: { reason: 'try', for: '1h' } });
  await cycle(d);
  assert.equal(existsSync(join(d.root, 'a.conf')), false, 'observe mode holds');
  await d.req('PUT', '/v1/mode', { body: { mode: 'enforce' } });
  await d.req('POST', '/v1/freeze', { body: { reason: 'still no' } });
  await cycle(d);
  assert.equal(existsSync(join(d.root, 'a.conf')), false, 'the freeze holds');
  const drift = (await d.req('GET', '/v1/drift')).json as { drift: Array<{ held: string }> };
  assert.deepEqual(
    drift.drift.map((x) => x.held),
    ['frozen'],
  );
});

/** A state store on real files whose writes fail (ENOSPC) while `failing` is set. */
class FailingStore extends FileStateStore {
  failing = false;
  private check(): void {
    if (this.failing) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
  }
  override async save(s: PersistedState): Promise<void> {
    this.check();
    await super.save(s);
  }
  override async appendAudit(records: readonly AuditRecord[]): Promise<void> {
    this.check();
    await super.appendAudit(records);
  }
}

/** The in-process harness (injected clock) on a one-File repo, removed after the test. */
async function oneFileHarness(
  t: { after: (fn: () => Promise<void>) => void },
  opts: Partial<Parameters<typeof makeHarness>[0]> = {},
) {
  const { base, repo } = await createOneFileRepo();
  const h = await makeHarness({ ...opts, sourceUrl: repo.workDir });
  t.after(async () => {
    await h.close();
    await rm(base, { recursive: true, force: true });
  });
  return h;
}

test('fail closed: an override that cannot be audited changes nothing; a freeze end that cannot be written keeps it frozen, also across a restart', async (t) => {
  let store: FailingStore | undefined;
  const h = await oneFileHarness(t, {
    extra: ALWAYS_DENIED,
    store: (c) => (store = new FailingStore(c.state.dir)),
  });
  store!.failing = true;
  await assert.rejects(h.agent.overrideWindow('hotfix', { forMs: 60_000 }, 'ops'), (e: unknown) =>
    isStewardError(e, 'STATE_UNWRITABLE'),
  );
  assert.equal(h.agent.currentState.windowOverride ?? null, null, 'no override without its record');
  assert.deepEqual((await h.cycle()).held, { window: 1 });

  store!.failing = false;
  await h.agent.overrideWindow('hotfix', { forMs: 60_000 }, 'ops');
  await h.agent.freeze('release train', 'ops', { forMs: 60_000 });
  h.clock.now += 60_000;
  store!.failing = true;
  const r = await h.cycle();
  assert.equal(r.frozen, true, 'the durable state says frozen: so does the agent');
  assert.deepEqual(r.held, { frozen: 1 });
  assert.equal(existsSync(join(h.root, 'a.conf')), false);
  assert.deepEqual(
    h.events.filter((e) => e.type === 'unfrozen'),
    [],
  );
  await h.restart();
  assert.notEqual(h.agent.currentState.freeze, null, 'still frozen on disk');
  store!.failing = false;
  const after = await h.cycle();
  assert.equal(after.frozen, false);
  assert.deepEqual(after.held, { window: 1 }, 'the override ended with the freeze: the window holds');
  assert.deepEqual(
    h.events.filter((e) => e.type === 'unfrozen' || e.type === 'window_override_ended').map((e) => e.type),
    ['unfrozen', 'window_override_ended'],
  );
});

test('injected clock: a freeze until a time ends at the first cycle after it, survives a restart until then', async (t) => {
  const h = await oneFileHarness(t);
  const until = h.clock.now + 3_600_000;
  await h.agent.freeze('release train', 'ops', { until });
  await h.restart();
  assert.equal(h.agent.currentState.freeze?.until, until, 'the end is persisted');
  assert.deepEqual((await h.cycle()).held, { frozen: 1 });
  h.clock.now = until - 1;
  assert.deepEqual((await h.cycle()).held, { frozen: 1 });
  h.clock.now = until;
  const r = await h.cycle();
  assert.equal(r.frozen, false);
  assert.equal(r.applied, 1);
  assert.deepEqual(
    h.events.filter((e) => e.type === 'unfrozen'),
    [{ type: 'unfrozen', by: 'expiry', approveRevision: null }],
  );
});

test('a freeze never shortens the freeze in force: the later end wins, no end beats any end', async (t) => {
  const h = await oneFileHarness(t);
  await h.agent.freeze('incident 7', 'ops');
  await h.agent.freeze('deploy pause', 'ci', { forMs: 60_000 });
  assert.equal(h.agent.currentState.freeze?.until, null, 'the incident freeze still has no end');
  assert.equal(h.agent.currentState.freeze?.reason, 'deploy pause', 'the newest reason is shown');
  h.clock.now += 120_000;
  assert.equal((await h.cycle()).frozen, true, 'still frozen after the shorter end passed');

  await h.agent.unfreeze('ops', null);
  await h.agent.freeze('window A', 'ops', { forMs: 600_000 });
  await h.agent.freeze('window B', 'ops', { forMs: 60_000 });
  assert.equal(h.agent.currentState.freeze?.until, h.clock.now + 600_000, 'the later end is kept');
  await h.agent.freeze('window C', 'ops', { forMs: 900_000 });
  assert.equal(h.agent.currentState.freeze?.until, h.clock.now + 900_000, 'a later end extends it');
  await h.agent.freeze('open-ended', 'ops');
  assert.equal(h.agent.currentState.freeze?.until, null, 'no end replaces an end');
});
