/**
 * `GET /v1/status` on any agent of a fleet (postgres backend) shows the
 * fleet's freeze and mode as they are now, not as of that agent's last cycle:
 * an operator who froze through one agent and asks another must not read
 * "not frozen". Two real daemons, one real PostgreSQL, no cycle in between.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type DaemonFleet, startDaemonFleet } from '../helpers/daemon-fleet.js';

let f: DaemonFleet;
before(async () => {
  f = await startDaemonFleet({ ids: ['web-1', 'web-2'], extra: '' });
  await f.round();
});
after(() => f?.stop());

interface Status {
  mode: string;
  freeze: { frozen: boolean; reason: string | null; by: string | null };
}

test("another agent's status shows the fleet's freeze and mode at once", async () => {
  const status = async (id: string) => (await f.api<Status>(id, 'GET', '/v1/status')).json;
  assert.equal((await status('web-2')).freeze.frozen, false);

  assert.equal((await f.api('web-1', 'POST', '/v1/freeze', { reason: 'incident 42' })).status, 200);
  const two = await status('web-2');
  assert.equal(two.freeze.frozen, true, 'frozen through web-1, read through web-2 before its next cycle');
  assert.equal(two.freeze.reason, 'incident 42');

  assert.equal((await f.api('web-2', 'POST', '/v1/unfreeze', {})).status, 200);
  assert.equal((await status('web-1')).freeze.frozen, false, 'unfrozen through web-2, read through web-1');

  assert.equal((await f.api('web-1', 'PUT', '/v1/mode', { mode: 'observe' })).status, 200);
  assert.equal((await status('web-2')).mode, 'observe');
});
