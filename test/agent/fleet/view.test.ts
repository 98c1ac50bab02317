/**
 * The heartbeat an agent reports (agent/fleet/view.ts): its health counts as
 * current only when every result comes from a run that started after the
 * agent's last change.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Agent } from '../../../agent/agent.js';
import { heartbeatOf } from '../../../agent/fleet/view.js';
import type { HealthCheckResult, HealthSource } from '../../../agent/health/types.js';

const agent = {
  lastCycle: {
    revision: 'a'.repeat(40),
    startedAt: new Date(0).toISOString(),
    drifted: 0,
    drift: [],
    stuck: 0,
  },
  source: { current: null },
  currentState: { freeze: null },
} as unknown as Agent;

const result = (startedAt: number, ok = true): HealthCheckResult => ({
  name: 'app',
  kind: 'http',
  ok,
  detail: 'HTTP 200',
  at: startedAt + 40,
  durationMs: 40,
});
const source = (...checks: HealthCheckResult[]): HealthSource => ({
  latest: () => ({ ok: checks.every((c) => c.ok), at: 1, checks }),
  check: async () => ({ ok: true, at: 1, checks }),
});

test('health is current only with every result started after the last change', () => {
  assert.equal(heartbeatOf(agent, source(result(1_000)), null).healthCurrent, true, 'no change yet');
  assert.equal(heartbeatOf(agent, source(result(1_000)), 1_000).healthCurrent, true, 'started at the change');
  // Ended after the change, started before it: it may have read the service as it was.
  assert.equal(heartbeatOf(agent, source(result(990)), 1_000).healthCurrent, false);
  assert.equal(
    heartbeatOf(agent, source(result(2_000), result(990)), 1_000).healthCurrent,
    false,
    'one stale result',
  );
  assert.equal(heartbeatOf(agent, undefined, 1_000).healthCurrent, true, 'no checks: nothing stale');
  const pending: HealthSource = {
    latest: () => ({ ok: false, at: null, checks: [], pending: ['app'] }),
    check: async () => ({ ok: false, at: null, checks: [], pending: ['app'] }),
  };
  assert.equal(heartbeatOf(agent, pending, null).healthCurrent, false, 'a check without a result yet');
});
