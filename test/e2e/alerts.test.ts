/**
 * Alert webhooks from a running daemon to a real HTTP receiver: each
 * transition exactly once, signed; a dead receiver never holds up the loop.
 * The source is the real git http-backend server, so "unreachable" is real.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { verify as verifySignature } from '../../core/hmac.js';
import { startDaemonHarness } from '../helpers/daemon.js';
import { createTestRepo } from '../helpers/git-repo.js';
import { startGitServer } from '../helpers/git-server.js';

interface Received {
  event: string;
  status: string;
  body: string;
  signature: string | undefined;
}

/** A receiver that records alerts; `hold` makes it keep requests open without answering. */
async function startReceiver() {
  const got: Received[] = [];
  const pending: ServerResponse[] = [];
  const waiters: Array<() => void> = [];
  let hold = false;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (hold) {
        pending.push(res);
        for (const w of waiters.splice(0)) w();
        return;
      }
      const p = JSON.parse(body) as { event: string; status: string };
      got.push({
        event: p.event,
        status: p.status,
        body,
        signature: req.headers['x-steward-signature'] as string | undefined,
      });
      res.end('ok');
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    got,
    pending,
    setHold(v: boolean) {
      hold = v;
    },
    /** Resolves once `n` alerts (or held requests, while holding) have arrived. */
    async until(pred: () => boolean): Promise<void> {
      while (!pred()) await new Promise<void>((r) => waiters.push(r));
    },
    async close() {
      for (const r of pending) r.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const file = (name: string, content: string, path = `f/${name}.conf`) =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: { path: ${path}, content: ${JSON.stringify(content)} }\n`;

test('each transition alerts exactly once, signed, with its resolution; a dead receiver does not hold up the loop', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-alerts-'));
  const receiver = await startReceiver();
  const server = await startGitServer({ projectRoot: base });
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  const names = Array.from({ length: 10 }, (_, i) => `r${i}`);
  for (const n of names) await repo.write(`fleet/${n}.yaml`, file(n, `${n}\n`));
  await repo.commitAndPush('v1');
  const secret = 'alert-signing-key';
  await writeFile(join(base, 'alert-secret'), `${secret}\n`);
  const d = await startDaemonHarness({
    sourceUrl: server.repoUrl('desired'),
    manual: true,
    guardrails: [
      'soak: { observeCycles: 0 }',
      'massDrift: { maxDrifted: 50, maxDriftedPercent: 30, minManaged: 5 }',
      'backoff: { base: 1ms, factor: 1, max: 1ms, jitter: 0 }',
      'nonConvergence: { alertAfterCycles: 2 }',
      'rateLimit: { actionsPerMinute: 6000, burst: 1000 }',
    ].join('\n'),
    extra: `alerts:\n  - { url: ${JSON.stringify(receiver.url)}, secretFile: ${JSON.stringify(join(base, 'alert-secret'))}, timeout: 200ms }`,
  });
  t.after(async () => {
    await d.stop();
    await receiver.close();
    await server.stop();
    await rm(base, { recursive: true, force: true });
  });
  const agent = d.daemon.agent;
  const cycle = async () => {
    await agent.refresh(true);
    await agent.idle();
  };
  const events = () => receiver.got.map((g) => `${g.event}:${g.status}`);
  const settle = async () => d.daemon.alerter.drain(5_000);

  // Converged fleet on disk, so the first cycle is not a mass change.
  await mkdir(join(d.root, 'f'));
  for (const n of names) await writeFile(join(d.root, `f/${n}.conf`), `${n}\n`);
  await cycle();
  await settle();
  assert.deepEqual(events(), [], JSON.stringify(agent.lastCycle?.drift.slice(0, 2)));

  // Mass drift → frozen, once.
  for (const n of names.slice(0, 6)) await writeFile(join(d.root, `f/${n}.conf`), 'tampered\n');
  await cycle();
  await cycle();
  await settle();
  assert.deepEqual(events(), ['mass_drift_frozen:firing']);
  // Approve the revision: the six are reverted (a plain unfreeze would freeze again at the next cycle).
  await d.req('POST', '/v1/unfreeze', { body: { approveRevision: await repo.head() } });
  await settle();
  assert.deepEqual(events().slice(1), ['unfrozen:resolved']);
  await cycle();
  assert.equal(agent.lastCycle!.applied, 6);

  // A bad revision → revision_rejected once; a fix → revision_recovered.
  await repo.write('fleet/r0.yaml', 'kind: [\n');
  await repo.commitAndPush('broken');
  await cycle();
  await cycle();
  await settle();
  assert.deepEqual(events().slice(2), ['revision_rejected:firing']);
  const rejected = JSON.parse(receiver.got[2]!.body) as { details: { problems: string[] } };
  assert.match(rejected.details.problems[0]!, /^fleet\/r0\.yaml:2:1: invalid YAML/);
  await repo.write('fleet/r0.yaml', file('r0', 'r0\n'));
  await repo.commitAndPush('fixed');
  await cycle();
  await settle();
  assert.deepEqual(events().slice(3), ['revision_recovered:resolved']);

  // The Git server dies → source_unreachable once; it comes back → source_recovered.
  server.failWith(503);
  await cycle();
  await cycle();
  await cycle();
  await settle();
  assert.deepEqual(events().slice(4), ['source_unreachable:firing']);
  server.failWith(null);
  await cycle();
  await settle();
  assert.deepEqual(events().slice(5), ['source_recovered:resolved']);

  // A resource that cannot be applied → resource_stuck once; fixed → resource_recovered.
  await writeFile(join(d.root, 'blocked'), 'a file where a folder should be');
  await repo.write('fleet/stuck.yaml', file('stuck', 'x\n', 'blocked/x.conf'));
  await repo.commitAndPush('stuck');
  for (let i = 0; i < 5; i++) await cycle();
  await settle();
  assert.deepEqual(events().slice(6), ['resource_stuck:firing']);
  await rm(join(d.root, 'blocked'));
  await cycle();
  await cycle();
  await settle();
  assert.deepEqual(events().slice(7), ['resource_recovered:resolved']);

  // Every alert is signed with the configured key.
  for (const g of receiver.got)
    assert.ok(verifySignature(g.body, g.signature, secret), `${g.event} signature`);

  // A receiver that never answers: the cycle completes while the alert is still unanswered.
  receiver.setHold(true);
  await d.req('POST', '/v1/freeze', { body: { reason: 'hold test' } });
  await receiver.until(() => receiver.pending.length >= 1);
  const before = agent.cycles;
  await cycle();
  assert.equal(agent.cycles, before + 1, 'the cycle ran to the end');
  assert.equal(receiver.pending.length, 1, 'while the alert request was still open');
  const m = (await d.req('GET', '/metrics', { auth: false })).text;
  assert.match(m, /^steward_alerts_total\{event="mass_drift_frozen",outcome="sent"\} 1$/m);
});
