/** Health alerts (SPEC §11): one `health_failing` per check and transition, resolved once by `health_recovered`. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { OpenAlerts, planAlerts, wants } from '../../../agent/alerts/plan.js';
import type { AgentEvent } from '../../../agent/events.js';

const failing = (check: string, detail = 'HTTP 500, expected 200'): AgentEvent => ({
  type: 'health_failing',
  check,
  kind: 'http',
  detail,
});
const recovered = (check: string): AgentEvent => ({
  type: 'health_recovered',
  check,
  kind: 'http',
  detail: 'HTTP 200',
});

it('fires once per failing check, however often it repeats, and resolves each once', () => {
  const open = new OpenAlerts();
  const plan = (e: AgentEvent) =>
    planAlerts(e, open).map((d) => `${d.event}:${d.status}:${d.details['check']}`);
  assert.deepEqual(plan(failing('web')), ['health_failing:firing:web']);
  assert.deepEqual(
    plan(failing('web', 'connection refused (ECONNREFUSED)')),
    [],
    'another detail is no news',
  );
  assert.deepEqual(plan(failing('db')), ['health_failing:firing:db'], 'each check has its own alert');
  assert.deepEqual(plan(recovered('web')), ['health_recovered:resolved:web']);
  assert.deepEqual(plan(recovered('web')), [], 'nothing open: nothing to resolve');
  assert.deepEqual(plan(recovered('db')), ['health_recovered:resolved:db']);
});

it('says which check failed and why, and resolves the health_failing alert', () => {
  const [fire] = planAlerts(failing('web'), new OpenAlerts());
  assert.deepEqual(fire, {
    event: 'health_failing',
    status: 'firing',
    severity: 'warning',
    message: 'health check web (http) is failing: HTTP 500, expected 200.',
    details: { check: 'web', kind: 'http', detail: 'HTTP 500, expected 200' },
  });
  const open = new OpenAlerts();
  planAlerts(failing('web'), open);
  const [resolve] = planAlerts(recovered('web'), open);
  assert.equal(resolve?.resolves, 'health_failing');
  const receiver = { url: 'http://x/', secret: null, events: ['health_failing'], timeoutMs: 1 };
  assert.ok(resolve && wants(receiver, resolve), 'a receiver of health_failing gets its recovery');
});
