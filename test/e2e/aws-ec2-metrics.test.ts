/** The daemon exposes the EC2 provider's API calls as steward_provider_requests_total (against moto_server). */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemonHarness } from '../helpers/daemon.js';
import { createTestRepo } from '../helpers/git-repo.js';
import { ec2World, startMoto } from '../helpers/moto.js';

test('steward_provider_requests_total counts EC2 calls by operation, with bounded labels', async (t) => {
  const moto = await startMoto();
  const base = await mkdtemp(join(tmpdir(), 'steward-ec2m-'));
  t.after(async () => {
    await moto.stop();
    await rm(base, { recursive: true, force: true });
  });
  const world = await ec2World(moto);
  const [id] = await world.run(1);
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  await repo.write(
    'fleet/web.yaml',
    `apiVersion: steward/v1\nkind: Ec2Instance\nmetadata: { name: web-1 }\nspec: { selector: { instanceId: ${id} }, tags: { Env: prod } }\n`,
  );
  await repo.commit('web-1');
  const d = await startDaemonHarness({
    sourceUrl: repo.workDir,
    manual: true,
    mode: 'observe',
    providersYaml: `aws-ec2: { region: ${world.region}, endpoint: "${moto.url}" }`,
  });
  t.after(() => d.stop());
  await d.daemon.agent.refresh(true);
  await d.daemon.agent.idle();
  assert.equal(d.daemon.agent.lastCycle?.drifted, 1);
  const m = (await d.req('GET', '/metrics', { auth: false })).text;
  const describe =
    /^steward_provider_requests_total\{provider="aws-ec2",operation="DescribeInstances"\} (\d+)$/m.exec(m);
  assert.ok(
    describe && Number(describe[1]) >= 1,
    m
      .split('\n')
      .filter((l) => l.includes('provider_requests'))
      .join('\n'),
  );
  assert.ok(!m.includes(id!), 'no instance ids in metric labels');
  assert.doesNotMatch(m, /operation="(CreateTags|DeleteTags)"/, 'observe mode writes nothing');
});
