/** The health metrics (SPEC §11): steward_health_check_ok{check} and steward_health_check_duration_seconds{check}. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Metrics } from '../../agent/metrics.js';

const value = async (m: Metrics, name: string, check: string): Promise<string | undefined> =>
  new RegExp(`^${name}\\{check="${check}"\\} (\\S+)$`, 'm').exec(await m.text())?.[1];

test('a configured check is 0 until it passes, then follows each result; its last duration in seconds', async () => {
  const m = new Metrics({ defaultMetrics: false });
  m.healthChecks(['web', 'app']);
  assert.equal(await value(m, 'steward_health_check_ok', 'web'), '0');
  assert.equal(await value(m, 'steward_health_check_ok', 'app'), '0');
  const result = { name: 'web', kind: 'http' as const, detail: 'HTTP 200', at: 1, durationMs: 250 };
  m.health({ ...result, ok: true });
  assert.equal(await value(m, 'steward_health_check_ok', 'web'), '1');
  assert.equal(await value(m, 'steward_health_check_duration_seconds', 'web'), '0.25');
  m.health({ ...result, ok: false, durationMs: 1000 });
  assert.equal(await value(m, 'steward_health_check_ok', 'web'), '0');
  assert.equal(await value(m, 'steward_health_check_duration_seconds', 'web'), '1');
  assert.equal(await value(m, 'steward_health_check_ok', 'app'), '0');
});
