/**
 * agent/alerts/plan.ts on its own: events → alert drafts and the open-alert
 * bookkeeping, with no receiver, socket or clock. (The HTTP behaviour is in
 * alerts.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OpenAlerts, planAlerts, stamp, wants } from '../../../agent/alerts/plan.js';
import type { AlertConfig } from '../../../agent/config.js';
import type { AgentEvent } from '../../../agent/events.js';

const names = (e: AgentEvent, open: OpenAlerts): string[] =>
  planAlerts(e, open).map((d) => `${d.event}:${d.status}${d.resolves ? `<${d.resolves}` : ''}`);

describe('planAlerts', () => {
  it('never puts the userinfo of a source URL in an alert (SPEC §9: alerts carry no secrets)', () => {
    const [draft] = planAlerts(
      {
        type: 'source_unreachable',
        error: 'GET https://deploy:ghp_T0KEN@git.example.com/fleet.git failed; retried //bot@mirror/x',
        code: 'SOURCE_UNREACHABLE',
      },
      new OpenAlerts(),
    );
    assert.ok(draft);
    const text = JSON.stringify(draft);
    assert.ok(!text.includes('ghp_T0KEN') && !text.includes('deploy:') && !text.includes('bot@'), text);
    assert.equal(
      draft.details['error'],
      'GET https://***@git.example.com/fleet.git failed; retried //***@mirror/x',
    );
    assert.match(draft.message, /https:\/\/\*\*\*@git\.example\.com/);
  });

  it("a revision rejected for its signatures says so: details.reason 'signature'", () => {
    const problems = [{ file: 'commit 0123456789ab', line: 1, col: 1, message: 'signature: unsigned: ...' }];
    const sha = '0123456789abcdef0123456789abcdef01234567';
    const [signed] = planAlerts(
      { type: 'revision_rejected', sha, problems, reason: 'signature' },
      new OpenAlerts(),
    );
    assert.equal(signed?.details['reason'], 'signature');
    const [invalid] = planAlerts({ type: 'revision_rejected', sha, problems }, new OpenAlerts());
    assert.equal(invalid?.details['reason'], undefined);
  });

  it('a mass-drift freeze says in its message and details what to run (the hint)', () => {
    const sha = 'b'.repeat(40);
    const hint = `if this change is intended, run steward approve ${sha} -c /etc/steward/steward.yaml`;
    const [draft] = planAlerts(
      { type: 'mass_drift_frozen', reason: '6 of 10 would change', sha, hint },
      new OpenAlerts(),
    );
    assert.equal(
      draft?.message,
      `steward froze itself (mass drift): 6 of 10 would change. Nothing is applied until an operator unfreezes it: ${hint}`,
    );
    assert.deepEqual(draft?.details, { reason: '6 of 10 would change', sha, hint });
  });

  it('leaves the event it reads unchanged', () => {
    const e: AgentEvent = { type: 'observe_failing', count: 1, codes: ['EACCES'] };
    const before = structuredClone(e);
    const [draft] = planAlerts(e, new OpenAlerts());
    assert.deepEqual(e, before);
    assert.ok(draft);
    assert.equal(
      draft.message,
      '1 resource could not be observed (EACCES); they are held, never treated as missing.',
    );
    assert.deepEqual(draft.details, { count: 1, codes: ['EACCES'] });
  });

  it('an initially open freeze is resolved once, and a repeat of it raises nothing', () => {
    const open = new OpenAlerts([{ event: 'mass_drift_frozen' }]);
    assert.deepEqual(names({ type: 'mass_drift_frozen', reason: 'r', sha: 'a'.repeat(40) }, open), []);
    const unfrozen: AgentEvent = { type: 'unfrozen', by: 'admin-api', approveRevision: 'a'.repeat(40) };
    assert.deepEqual(names(unfrozen, open), ['unfrozen:resolved<mass_drift_frozen']);
    assert.deepEqual(names(unfrozen, open), []);
  });

  it('a freeze with an end says until when; its expiry resolves it once, saying it ended by itself', () => {
    const open = new OpenAlerts();
    const until = Date.UTC(2026, 0, 1, 12);
    const [fired] = planAlerts({ type: 'frozen', reason: 'deploy', by: 'admin-api', until }, open);
    assert.match(fired?.message ?? '', /frozen by admin-api until 2026-01-01T12:00:00\.000Z: deploy/);
    assert.equal(fired?.details['until'], '2026-01-01T12:00:00.000Z');
    const expiry: AgentEvent = { type: 'unfrozen', by: 'expiry', approveRevision: null };
    const [resolvedDraft, ...more] = planAlerts(expiry, open);
    assert.deepEqual(more, []);
    assert.equal(resolvedDraft?.resolves, 'frozen');
    assert.equal(resolvedDraft?.details['by'], 'expiry');
    assert.match(resolvedDraft?.message ?? '', /ended by itself/);
    assert.deepEqual(names(expiry, open), []);
  });

  it('a window override raises no alert (it is audited)', () => {
    const e: AgentEvent = { type: 'window_override', reason: 'r', by: 'admin-api', until: 1 };
    assert.deepEqual(names(e, new OpenAlerts()), []);
  });

  it('one unfreeze resolves both freezes when both are open, in a fixed order', () => {
    const open = new OpenAlerts([{ event: 'frozen' }, { event: 'mass_drift_frozen' }]);
    assert.deepEqual(names({ type: 'unfrozen', by: 'admin-api', approveRevision: null }, open), [
      'unfrozen:resolved<mass_drift_frozen',
      'unfrozen:resolved<frozen',
    ]);
  });
});

describe('wants', () => {
  const receiver = (events: string[]): AlertConfig => ({
    url: 'http://x',
    secret: null,
    events,
    timeoutMs: 1,
  });

  it('takes an alert by its event, or a resolved one by the event it resolves', () => {
    const recovered = { event: 'source_recovered', resolves: 'source_unreachable' };
    assert.equal(wants(receiver(['source_unreachable']), recovered), true);
    assert.equal(wants(receiver(['source_recovered']), recovered), true);
    assert.equal(wants(receiver(['frozen']), recovered), false);
    assert.equal(wants(receiver(['source_recovered']), { event: 'source_unreachable' }), false);
  });
});

describe('stamp', () => {
  it('adds the time (ISO, UTC) and revision, in the documented key order; no resolves key on a firing alert', () => {
    const at = Date.parse('2026-03-01T12:00:00.000Z');
    const firing = stamp(
      { event: 'frozen', status: 'firing', severity: 'warning', message: 'm', details: { by: 'x' } },
      at,
      null,
    );
    assert.equal(
      JSON.stringify(firing),
      '{"event":"frozen","status":"firing","severity":"warning","message":"m","at":"2026-03-01T12:00:00.000Z","revision":null,"details":{"by":"x"}}',
    );
    const resolved = stamp(
      {
        event: 'unfrozen',
        status: 'resolved',
        resolves: 'frozen',
        severity: 'info',
        message: 'm',
        details: {},
      },
      at,
      'c0ffee',
    );
    assert.deepEqual(Object.keys(resolved), [
      'event',
      'status',
      'resolves',
      'severity',
      'message',
      'at',
      'revision',
      'details',
    ]);
    assert.equal(resolved.revision, 'c0ffee');
  });
});
