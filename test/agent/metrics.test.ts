/** The metrics registry: the label-free "revision verified" gauge (SPEC §10). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Metrics } from '../../agent/metrics.js';

const verified = async (m: Metrics): Promise<string | undefined> =>
  /^steward_revision_verified (\S+)$/m.exec(await m.text())?.[1];

test('steward_revision_verified: 0 until a verified revision is in force, 1 while one is, unchanged by a cycle', async () => {
  const m = new Metrics({ defaultMetrics: false });
  assert.equal(await verified(m), '0', 'no revision, or no source.verify: 0');
  m.setRevision('a'.repeat(40), true);
  assert.equal(await verified(m), '1');
  m.setRevision('a'.repeat(40)); // what a cycle report sets: the sha only
  assert.equal(await verified(m), '1');
  m.setRevision('b'.repeat(40), false);
  assert.equal(await verified(m), '0');
});

test('steward_window_open: 1 with no windows, follows setWindow (a cycle, the start, an override)', async () => {
  const m = new Metrics({ defaultMetrics: false });
  const open = async (): Promise<string | undefined> =>
    /^steward_window_open (\S+)$/m.exec(await m.text())?.[1];
  assert.equal(await open(), '1');
  m.setWindow(false);
  assert.equal(await open(), '0');
  m.setWindow(true);
  assert.equal(await open(), '1');
});
