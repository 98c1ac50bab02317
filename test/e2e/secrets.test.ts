/**
 * No file contents leave the process whole (SPEC §9): a real daemon with a
 * real logger, a managed file holding a credential, drift and revert; then
 * every place a patch or a problem goes — logs, audit.log, /v1/drift,
 * /v1/status, /v1/audit, `steward plan` (human and JSON), alert payloads.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../agent/cli.js';
import { createLogger } from '../../agent/log.js';
import { until } from '../helpers/agent-process.js';
import { startDaemonHarness } from '../helpers/daemon.js';
import { createTestRepo } from '../helpers/git-repo.js';

const CANARY = 'AKIA-SECRET-CANARY-e2e-5d2f0c';
const TAMPER = 'AKIA-TAMPER-CANARY-e2e-a91b77';
const UNCHANGED = 'UNCHANGED-CANARY';

const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const secretContent = `AWS_SECRET_ACCESS_KEY=${CANARY}\n`;
const tampered = `AWS_SECRET_ACCESS_KEY=${TAMPER}\n`;
/** 30 lines; the first and last are far from line 15, the one that drifts. */
const appContent = Array.from({ length: 30 }, (_, i) =>
  i === 0 || i === 29 ? `${UNCHANGED}-${i + 1}` : i === 14 ? 'port = 8080' : `setting-${i + 1} = on`,
)
  .map((l) => `${l}\n`)
  .join('');

const manifest = (name: string, path: string, content: string, extra = '') =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: { path: ${path}, content: ${JSON.stringify(content)} }\n${extra}`;

async function alertReceiver() {
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => {
      bodies.push(body);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    bodies,
    close: () => new Promise((r) => server.close(r)),
  };
}

async function plan(configPath: string, json: boolean): Promise<string> {
  const out: string[] = [];
  const code = await main(
    ['plan', '-c', configPath, ...(json ? ['--json'] : [])],
    { out: (s) => out.push(s), err: (s) => out.push(s) },
    {},
  );
  assert.equal(code, 2, out.join('\n'));
  return out.join('\n');
}

function assertNoSecret(where: string, text: string): void {
  assert.ok(!text.includes(CANARY), `${where} shows the desired secret`);
  assert.ok(!text.includes(TAMPER), `${where} shows the observed secret`);
}

test('a credential in a managed file appears in no log, audit, API answer, plan or alert', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-secrets-'));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  const receiver = await alertReceiver();
  const logLines: string[] = [];
  const log = createLogger(
    'debug',
    new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    }),
  );
  await repo.write('fleet/secret.yaml', manifest('secret', 'secret.env', secretContent, 'sensitive: true\n'));
  await repo.write('fleet/app.yaml', manifest('app', 'app.conf', appContent));
  await repo.commit('a secret and a config');
  const d = await startDaemonHarness({
    sourceUrl: repo.workDir,
    manual: true,
    log,
    extra: `alerts:\n  - { url: ${JSON.stringify(receiver.url)}, timeout: 500ms }`,
  });
  t.after(async () => {
    await d.stop();
    await receiver.close();
    await rm(base, { recursive: true, force: true });
  });
  const configPath = join(d.dir, 'steward.yaml');
  const cycle = async () => {
    const before = d.daemon.agent.cycles;
    assert.equal((await d.req('POST', '/v1/reconcile')).status, 202);
    await d.daemon.agent.idle();
    assert.ok(d.daemon.agent.cycles > before, 'a cycle ran');
  };

  // Created: the provider got the real content.
  await cycle();
  assert.equal(await readFile(join(d.root, 'secret.env'), 'utf8'), secretContent);
  assert.equal(await readFile(join(d.root, 'app.conf'), 'utf8'), appContent);
  await cycle();
  assert.equal(d.daemon.agent.lastCycle?.drifted, 0, 'the create stuck');

  // Drift by hand, then plan (no action) and a revert.
  await writeFile(join(d.root, 'secret.env'), tampered);
  await writeFile(join(d.root, 'app.conf'), appContent.replace('port = 8080\n', 'port = 9999\n'));
  const human = await plan(configPath, false);
  const json = await plan(configPath, true);
  await cycle();
  assert.equal(await readFile(join(d.root, 'secret.env'), 'utf8'), secretContent, 'reverted');
  assert.equal(await readFile(join(d.root, 'app.conf'), 'utf8'), appContent, 'reverted');
  const drift = await d.req('GET', '/v1/drift');

  // A bad revision whose YAML error sits on the secret's line: rejected, alerted.
  await repo.write(
    'fleet/secret.yaml',
    `apiVersion: steward/v1\nkind: File\nmetadata: { name: secret }\nspec:\n  path: secret.env\n  content: ${CANARY}\n   oops: ${CANARY}\n`,
  );
  await repo.commit('broken');
  await cycle();
  await until(async () => receiver.bodies.some((b) => b.includes('revision_rejected')), 'the alert');

  const status = await d.req('GET', '/v1/status');
  const audit = await d.req('GET', '/v1/audit');
  const auditLog = await readFile(join(d.stateDir, 'audit.log'), 'utf8');
  assert.match(status.text, /invalid YAML/);
  assert.ok(
    logLines.some((l) => l.includes('"msg":"applied"') && l.includes('File/secret')),
    'logs captured',
  );
  for (const secret of [d.token, d.webhookSecret])
    assert.ok(!logLines.join('').includes(secret), 'no admin token or webhook secret in the log');

  for (const [where, text] of [
    ['log', logLines.join('')],
    ['audit.log', auditLog],
    ['/v1/drift', drift.text],
    ['/v1/status', status.text],
    ['/v1/audit', audit.text],
    ['plan', human],
    ['plan --json', json],
    ['alerts', receiver.bodies.join('\n')],
  ] as const)
    assertNoSecret(where, text);

  // The sensitive file: digests that an operator can check with sha256sum, no diff.
  type Op = {
    op: string;
    path: string;
    diff?: string;
    before?: { sha256: string };
    after?: { sha256: string };
  };
  type Drift = { drift: Array<{ name: string; patch: Op[] }> };
  const planned = JSON.parse(json) as Drift;
  for (const view of [planned, drift.json as Drift]) {
    const byName = new Map(view.drift.map((x) => [x.name, x.patch]));
    const [secretOp] = byName.get('secret')!;
    assert.deepEqual(secretOp, {
      op: 'replace',
      path: '/spec/content',
      before: { sha256: sha(tampered), bytes: Buffer.byteLength(tampered) },
      after: { sha256: sha(secretContent), bytes: Buffer.byteLength(secretContent) },
    });
    // The non-sensitive file: the changed line is shown with its context, the far lines are not.
    const [appOp] = byName.get('app')!;
    assert.equal(
      appOp!.diff,
      '@@ -13,5 +13,5 @@\n setting-13 = on\n setting-14 = on\n-port = 9999\n+port = 8080\n setting-16 = on\n setting-17 = on\n',
    );
    assert.ok(!JSON.stringify(appOp).includes(UNCHANGED));
  }
  assert.match(human, /^ {8}-port = 9999$/m);
  assert.ok(!human.includes(UNCHANGED) && !drift.text.includes(UNCHANGED));
  const newest = (audit.json as { records: Array<{ name: string; patch: Op[] }> }).records;
  const revert = newest.find((r) => r.name === 'app')!;
  assert.match(revert.patch[0]!.diff!, /\+port = 8080/);
  assert.ok(!JSON.stringify(revert).includes(UNCHANGED), 'the revert record shows only the diff context');
});
