/** GET /v1/fleet with the files backend: the fleet is this agent alone; the route needs the token. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FleetView } from '../../agent/fleet/types.js';
import { startOneFileDaemon } from '../helpers/daemon.js';

test('GET /v1/fleet (files backend) shows this agent only, with its labels, revision and drift', async (t) => {
  const d = await startOneFileDaemon(t, { extra: 'agent: { id: web-17, labels: { role: web } }' });
  await d.daemon.agent.poll();
  await d.daemon.agent.trigger('test');
  const res = await d.req('GET', '/v1/fleet');
  assert.equal(res.status, 200);
  const view = res.json as FleetView;
  assert.equal(view.backend, 'files');
  assert.equal(view.self, 'web-17');
  assert.equal(view.rollout, null);
  assert.equal(view.agents.length, 1);
  const [me] = view.agents;
  assert.equal(me?.id, 'web-17');
  assert.deepEqual(me?.labels, { role: 'web' });
  assert.equal(me?.revision, d.daemon.agent.lastCycle?.revision);
  assert.equal(me?.frozen, false);
  assert.equal(me?.healthy, true);
  assert.notEqual(me?.lastCycleAt, null);

  assert.equal((await d.req('GET', '/v1/fleet', { auth: false })).status, 401);
  const spec = (await d.req('GET', '/openapi.json', { auth: false })).json as {
    paths: Record<string, unknown>;
  };
  assert.ok(spec.paths['/v1/fleet'], 'documented in /openapi.json');
});
