/**
 * Fleet-wide mass drift (SPEC §11 `fleet.massDrift`): each agent alone sees
 * one drifted file, far below its own mass-drift halt — the incident steward
 * exists to prevent, spread over hosts. With `maxDriftedPercent: 50` over four
 * agents, a push reaches two of them; the third would take the fleet past
 * 50 %, so the fleet freezes (`fleet_mass_drift`) before it acts.
 * `approveRevision` lets the change through to the rest.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type DaemonFleet, startDaemonFleet } from '../helpers/daemon-fleet.js';

const IDS = ['web-1', 'web-2', 'web-3', 'web-4'];
let f: DaemonFleet;

before(async () => {
  f = await startDaemonFleet({ ids: IDS, extra: 'fleet: { massDrift: { maxDriftedPercent: 50 } }' });
});
after(() => f?.stop());

test('a push every agent would take freezes the fleet once half of it took it; approving it lets it through', async () => {
  await f.round(); // registered, converged on v1
  await f.push('typo');
  const r = await f.round();
  assert.deepEqual(
    IDS.map((id) => r.get(id)),
    [1, 1, 0, 0],
    'two agents acted, then the fleet froze',
  );
  assert.deepEqual(
    IDS.map((id) => f.content(id)),
    ['typo', 'typo', 'v1', 'v1'],
  );
  const reason = await f.freezeReason();
  assert.match(reason ?? '', /^fleet_mass_drift: 3 of 4 agents \(over 50 %\)/);
  assert.match(reason!, /agents web-1, web-2, web-3/);
  assert.equal(f.daemons.get('web-3')!.agent.lastCycle!.held.frozen, 1);

  // The same push again through another cycle: still frozen, nothing acts.
  assert.deepEqual([...(await f.round()).values()], [0, 0, 0, 0]);

  const sha = f.daemons.get('web-1')!.agent.lastCycle!.revision;
  await f.daemons.get('web-4')!.agent.unfreeze('admin-api', sha);
  await f.round();
  assert.deepEqual(
    IDS.map((id) => f.content(id)),
    ['typo', 'typo', 'typo', 'typo'],
  );
  assert.equal(await f.freezeReason(), null);
});
