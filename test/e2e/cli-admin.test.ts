/**
 * The operator commands (steward status, drift, freeze, unfreeze, approve,
 * mode, audit, reconcile, fleet) against a running daemon over a real
 * loopback socket: human output, `--json` (the API's body unchanged), exit
 * codes, where the token comes from, and the errors a user meets.
 */
import assert from 'node:assert/strict';
import { writeFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../agent/cli.js';
import { createLogger, type Logger } from '../../agent/log.js';
import { type DaemonHarness, startDaemonHarness } from '../helpers/daemon.js';
import { createTestRepo, type TestRepo } from '../helpers/git-repo.js';
import { freePort } from '../helpers/moto.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s) }, env);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const file = (name: string, content: string) =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: { path: ${name}.conf, content: ${JSON.stringify(content)} }\n`;

async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  opts: {
    files?: number;
    guardrails?: string;
    mode?: 'observe' | 'enforce';
    extra?: string;
    log?: Logger;
  } = {},
): Promise<{ d: DaemonHarness; repo: TestRepo; config: string; sha: string }> {
  const base = await mkdtemp(join(tmpdir(), 'steward-cli-admin-'));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  for (let i = 0; i < (opts.files ?? 2); i++)
    await repo.write(`fleet/f${i}.yaml`, file(`f${i}`, `v1 ${i}\n`));
  const sha = await repo.commit('v1');
  const d = await startDaemonHarness({
    sourceUrl: repo.workDir,
    manual: true,
    mode: opts.mode ?? 'enforce',
    ...(opts.extra ? { extra: opts.extra } : {}),
    ...(opts.log ? { log: opts.log } : {}),
    guardrails:
      opts.guardrails ??
      'soak: { observeCycles: 0 }\nmassDrift: { maxDrifted: 100, maxDriftedPercent: 100, minManaged: 5 }',
  });
  t.after(async () => {
    await d.stop();
    await rm(base, { recursive: true, force: true });
  });
  return { d, repo, config: join(d.dir, 'steward.yaml'), sha };
}

/** Runs one cycle (poll included) and waits for it. */
async function cycle(d: DaemonHarness): Promise<void> {
  const before = d.daemon.agent.cycles;
  assert.equal((await d.req('POST', '/v1/reconcile')).status, 202);
  await d.daemon.agent.idle();
  assert.ok(d.daemon.agent.cycles > before, 'a cycle ran');
}

test('status, drift, audit: aligned human tables by default; --json prints the API body as it came', async (t) => {
  const { d, config, sha } = await setup(t);
  await cycle(d);
  await cycle(d);
  await writeFile(join(d.root, 'f1.conf'), 'hand edit\n');
  await d.req('POST', '/v1/freeze', { body: { reason: 'incident 9' } });
  await cycle(d);
  const api = ['--api', d.url, '-c', config];

  const st = await cli(['status', ...api]);
  assert.equal(st.code, 0, st.err);
  assert.equal(st.err, '');
  assert.match(st.out, /^mode {8}enforce$/m);
  assert.match(st.out, /^frozen {6}yes, since \d+s ago by admin-api: incident 9$/m);
  assert.match(
    st.out,
    new RegExp(`^revision {4}${sha.slice(0, 12)} {2}fetched \\d+s ago, 2 resources, unverified$`, 'm'),
  );
  assert.match(
    st.out,
    /^last cycle {2}\d+s ago \(\d+ ms\): 2 managed, 1 drifted, 0 applied, 0 failed, 0 observe errors$/m,
  );
  assert.match(st.out, /^ {12}held: frozen 1$/m);
  assert.doesNotMatch(st.out, new RegExp(d.token), 'the token is never printed');
  const stJson = await cli(['status', ...api, '--json']);
  assert.equal(stJson.code, 0);
  assert.equal(stJson.out, (await d.req('GET', '/v1/status')).text, 'the body, unchanged');

  const dr = await cli(['drift', ...api]);
  assert.equal(dr.code, 0, dr.err);
  const lines = dr.out.split('\n');
  assert.match(
    lines[0]!,
    new RegExp(`^revision ${sha.slice(0, 12)}, checked \\d+s ago: 1 drifted, 0 errors$`),
  );
  assert.match(lines[2]!, /^RESOURCE +ID +STATE +HELD +SINCE +TRIES +CHANGE$/);
  assert.match(
    lines[3]!,
    /^File\/f1 +f1\.conf +drifted +frozen +\d+s ago +0 +replace \/spec\/content \(content\)$/,
  );
  assert.equal(lines[2]!.indexOf('STATE'), lines[3]!.indexOf('drifted'), 'columns aligned');
  const drJson = await cli(['drift', ...api, '--json']);
  assert.equal(drJson.out, (await d.req('GET', '/v1/drift')).text);

  const au = await cli(['audit', ...api, '--limit', '2']);
  assert.equal(au.code, 0, au.err);
  const rows = au.out.split('\n');
  assert.match(rows[0]!, /^AT +OUTCOME +RESOURCE +ID +REVISION +MS +CHANGE$/);
  assert.equal(rows.length, 3, au.out);
  assert.match(rows[1]!, /^\d+s ago +applied +File\/f[01] +f[01]\.conf +[0-9a-f]{12} +\d+ +create$/);
  const auJson = await cli(['audit', ...api, '--json', '--limit', '2']);
  assert.deepEqual(JSON.parse(auJson.out), (await d.req('GET', '/v1/audit?limit=2')).json);
  assert.equal(JSON.parse(auJson.out).records.length, 2);

  const badLimit = await cli(['audit', ...api, '--limit', '0']);
  assert.equal(badLimit.code, 1);
  assert.match(badLimit.err, /^steward: USAGE: --limit is a number from 1 to 1000, not "0"$/);
});

test('freeze --reason then status shows frozen; unfreeze; mode; reconcile; each with its exit code and --json', async (t) => {
  const { d, config } = await setup(t);
  await cycle(d);
  const api = ['--api', d.url, '-c', config];

  const fr = await cli(['freeze', '--reason', 'change freeze for the release', ...api]);
  assert.equal(fr.code, 0, fr.err);
  assert.match(
    fr.out,
    /^frozen: detection goes on, nothing is applied\nfrozen by admin-api: change freeze for the release; nothing is applied$/,
  );
  assert.equal(d.daemon.agent.currentState.freeze?.reason, 'change freeze for the release');
  const st = await cli(['status', ...api]);
  assert.match(st.out, /^frozen +yes, since \d+s ago by admin-api: change freeze for the release$/m);

  const noReason = await cli(['freeze', ...api]);
  assert.equal(noReason.code, 1);
  assert.match(noReason.err, /^steward: USAGE: freeze needs --reason TEXT/);
  const both = await cli([
    'freeze',
    '--reason',
    'x',
    '--for',
    '1h',
    '--until',
    '2030-01-01T00:00:00Z',
    ...api,
  ]);
  assert.equal(both.code, 1);
  assert.match(both.err, /USAGE: give --for or --until, not both/);

  const un = await cli(['unfreeze', ...api, '--json']);
  assert.equal(un.code, 0, un.err);
  assert.equal(JSON.parse(un.out).freeze.frozen, false, '--json: the status the API answered');
  assert.equal(d.daemon.agent.currentState.freeze, null);
  const again = await cli(['unfreeze', ...api]);
  assert.equal(again.code, 1, 'not frozen: the API says 409');
  assert.match(again.err, /^steward: NOT_FROZEN: the agent is not frozen/);
  assert.equal(again.out, '');

  const m = await cli(['mode', 'observe', ...api]);
  assert.equal(m.code, 0, m.err);
  assert.match(m.out, /^mode set to observe\nmode is observe: drift is reported, nothing is applied/);
  assert.equal(d.daemon.agent.mode, 'observe');
  const bad = await cli(['mode', 'enforcing', ...api]);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /USAGE: mode is observe or enforce, not "enforcing"/);
  const back = await cli(['mode', 'enforce', ...api, '--json']);
  assert.equal(JSON.parse(back.out).mode, 'enforce');

  const before = d.daemon.agent.cycles;
  const rc = await cli(['reconcile', ...api]);
  assert.equal(rc.code, 0, rc.err);
  assert.match(rc.out, /^requested: the agent polls Git and runs a cycle now/);
  await d.daemon.agent.idle();
  assert.ok(d.daemon.agent.cycles > before, 'the reconcile ran a cycle');
  const rcJson = await cli(['reconcile', ...api, '--json']);
  assert.deepEqual(JSON.parse(rcJson.out), { accepted: true });
  await d.daemon.agent.idle();
});

test('the token: from --token-file, $STEWARD_TOKEN_FILE or the config, never a flag; a wrong one is a 401 that names the file', async (t) => {
  const { d, config } = await setup(t);
  const tokenFile = join(d.dir, 'state', 'admin-token');
  // From the config's admin.tokenFile (the default <state.dir>/admin-token).
  assert.equal((await cli(['status', '--api', d.url, '-c', config])).code, 0);
  // From --token-file, with no config at all.
  const noConfig = { STEWARD_CONFIG: join(d.dir, 'nope.yaml') };
  assert.equal((await cli(['status', '--api', d.url, '--token-file', tokenFile], noConfig)).code, 0);
  // From $STEWARD_TOKEN_FILE.
  const fromEnv = await cli(['status', '--api', d.url], { ...noConfig, STEWARD_TOKEN_FILE: tokenFile });
  assert.equal(fromEnv.code, 0, fromEnv.err);
  // --token is not a flag: the token never goes in argv.
  const flag = await cli(['status', '--api', d.url, '--token', d.token]);
  assert.equal(flag.code, 1);
  assert.match(flag.err, /^steward: USAGE: unknown option --token \(did you mean --token-file\?\)/);
  assert.doesNotMatch(flag.err, new RegExp(d.token));

  const wrong = join(d.dir, 'wrong-token');
  await writeFile(wrong, 'not-the-token-at-all-0123456789\n');
  const r = await cli(['status', '--api', d.url, '--token-file', wrong]);
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.equal(
    r.err,
    `steward: ADMIN_UNAUTHORIZED: the admin API at ${d.url} refused the token from ${wrong}: use the agent's admin.tokenFile (--token-file FILE or $STEWARD_TOKEN_FILE)`,
  );
  assert.doesNotMatch(r.err, /not-the-token/, 'the token itself is never printed');

  const missing = await cli(['status', '--api', d.url, '--token-file', join(d.dir, 'none')]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /^steward: ADMIN_TOKEN_READ: cannot read the admin token file .*none: ENOENT; /);

  const noCfg = await cli(['status'], noConfig);
  assert.equal(noCfg.code, 1);
  assert.match(noCfg.err, /^steward: CONFIG_READ: .*nope\.yaml.*or pass --api URL and --token-file FILE$/);
});

test('a dead API: ADMIN_UNREACHABLE naming the URL and how to start the agent; the default URL comes from admin.listen', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steward-cli-dead-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const token = join(dir, 'token');
  await writeFile(token, 'a-token-for-nobody-0123456789\n');
  const config = join(dir, 'steward.yaml');
  await writeFile(
    config,
    `source: { url: desired, ref: main, path: fleet }\nproviders: { file: { root: managed } }\nadmin: { listen: "127.0.0.1:${port}", tokenFile: token }\n`,
  );
  const url = `http://127.0.0.1:${port}`;
  for (const args of [['status'], ['drift', '--json'], ['freeze', '--reason', 'x'], ['fleet']]) {
    const r = await cli([...args, '-c', config]);
    assert.equal(r.code, 1, args.join(' '));
    assert.equal(r.out, '');
    assert.equal(
      r.err,
      `steward: ADMIN_UNREACHABLE: cannot reach the admin API at ${url} (ECONNREFUSED): is the agent running? Start it with steward run -c ${config}, or point --api at its admin.listen`,
    );
  }
});

test('approve SHA after a first-start freeze: the log line, the alert and the status say what to run, and running it converges', async (t) => {
  const alerts: string[] = [];
  const receiver = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      alerts.push(Buffer.concat(chunks).toString('utf8'));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => receiver.close(() => r())));
  const logLines: string[] = [];
  const { d, config, sha } = await setup(t, {
    files: 5,
    guardrails:
      'soak: { observeCycles: 0 }\nmaxActionsPerCycle: 10\nmassDrift: { maxDrifted: 50, maxDriftedPercent: 30, minManaged: 5 }',
    extra: `alerts:\n  - { url: "http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook", events: [mass_drift_frozen] }`,
    log: createLogger('warn', { write: (s: string) => void logLines.push(s) }),
  });
  const command = `steward approve ${sha} -c ${config}`;
  await cycle(d);
  assert.ok(d.daemon.agent.currentState.freeze, 'creating every file is mass drift: frozen');
  const st = await cli(['status', '--api', d.url, '-c', config]);
  assert.match(
    st.out,
    /^frozen +yes, since \d+s ago by steward \(mass-drift halt\): 5 of 5 managed resources \(100%\) would change; limit 30%$/m,
  );
  assert.match(
    st.out,
    /^ {12}5 of the 5 changes create a resource \(a first start\?\): check them with steward drift, then run /m,
  );
  assert.ok(st.out.includes(command), st.out);
  const hint = JSON.parse((await cli(['status', '--api', d.url, '-c', config, '--json'])).out).freeze.hint;
  assert.ok(typeof hint === 'string' && hint.includes(command), `status.freeze.hint: ${hint}`);
  const line = logLines
    .map((l) => JSON.parse(l) as { level: string; msg: string })
    .find((l) => l.msg.startsWith('mass_drift_frozen'));
  assert.equal(line?.level, 'warn');
  assert.ok(line.msg.includes(command), `the log line: ${line.msg}`);
  await d.daemon.alerter.drain(5_000);
  assert.equal(alerts.length, 1);
  const alert = JSON.parse(alerts[0]!) as { event: string; message: string; details: { hint?: string } };
  assert.equal(alert.event, 'mass_drift_frozen');
  assert.ok(alert.message.includes(command), alert.message);
  assert.ok(alert.details.hint?.includes(command), JSON.stringify(alert.details));

  const ap = await cli(['approve', sha.slice(0, 8), '--api', d.url, '-c', config]);
  assert.equal(ap.code, 0, ap.err);
  assert.match(ap.out, new RegExp(`^approved revision ${sha.slice(0, 12)} and unfrozen\nmode is enforce`));
  await cycle(d);
  for (let i = 0; i < 5; i++) assert.equal(await readFile(join(d.root, `f${i}.conf`), 'utf8'), `v1 ${i}\n`);
  const after = await cli(['status', '--api', d.url, '-c', config, '--json']);
  assert.equal(JSON.parse(after.out).freeze.frozen, false);

  const notFrozen = await cli(['approve', sha, '--api', d.url, '-c', config]);
  assert.equal(notFrozen.code, 1);
  assert.match(notFrozen.err, /^steward: NOT_FROZEN: /);
  const notSha = await cli(['approve', 'main', '--api', d.url, '-c', config]);
  assert.equal(notSha.code, 1);
  assert.match(notSha.err, /USAGE: "main" is not a commit SHA/);
});

test('fleet: the agents table from GET /v1/fleet, or a clean message when the agent has no fleet view', async (t) => {
  const { d, config } = await setup(t);
  await cycle(d);
  const r = await cli(['fleet', '--api', d.url, '-c', config]);
  const fleet = await d.req('GET', '/v1/fleet');
  assert.equal(fleet.status, 200, 'the files backend shows this agent alone');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^AGENT +WAVE +REVISION +HEALTH +FROZEN +DRIFTED +LAST CYCLE +SEEN$/m);
  const j = await cli(['fleet', '--api', d.url, '-c', config, '--json']);
  // lastSeenAt is "now" for the agent answering: equal but for it
  type View = { agents: Array<{ lastSeenAt?: string }> };
  const unseen = (v: View) => ({ ...v, agents: v.agents.map(({ lastSeenAt: _, ...a }) => a) });
  assert.deepEqual(unseen(JSON.parse(j.out) as View), unseen(fleet.json as View));
});

test('freeze --for against the real agent: it ends by itself (status shows until); unfreeze lifts it', async (t) => {
  const { d, config } = await setup(t);
  await cycle(d);
  const r = await cli(['freeze', '--reason', 'deploy pause', '--for', '1h', '--api', d.url, '-c', config]);
  assert.equal(r.code, 0, r.err);
  const s = (await d.req('GET', '/v1/status')).json as { freeze: { frozen: boolean; until: string | null } };
  assert.equal(s.freeze.frozen, true);
  const until = Date.parse(s.freeze.until ?? '');
  assert.ok(
    until > Date.now() + 59 * 60_000 && until <= Date.now() + 60 * 60_000,
    s.freeze.until ?? 'no until',
  );
  assert.equal((await cli(['unfreeze', '--api', d.url, '-c', config])).code, 0);
  assert.equal(
    ((await d.req('GET', '/v1/status')).json as { freeze: { frozen: boolean } }).freeze.frozen,
    false,
  );
});

test('freeze --for / --until send {reason, for} / {reason, until}, with the bearer token from the file', async (t) => {
  const seen: Array<{ method: string; url: string; auth: string; body: unknown }> = [];
  const answer = JSON.stringify({
    mode: 'enforce',
    freeze: {
      frozen: true,
      reason: 'r',
      by: 'admin-api',
      since: '2026-12-02T00:00:00.000Z',
      until: '2030-01-01T00:00:00.000Z',
      hint: null,
    },
    revision: {
      sha: null,
      fetchedAt: null,
      resources: 0,
      verified: null,
      signer: null,
      approved: false,
      rejected: null,
    },
    state: { writable: true, error: null },
    source: { error: null },
    lastCycle: null,
    cycles: 0,
  });
  const api = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        auth: req.headers.authorization ?? '',
        body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'),
      });
      res.setHeader('content-type', 'application/json');
      res.end(answer);
    });
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => api.close(() => r())));
  const dir = await mkdtemp(join(tmpdir(), 'steward-cli-body-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, 'token-from-the-file-0123456789\n');
  const base = [
    '--api',
    `http://127.0.0.1:${(api.address() as AddressInfo).port}`,
    '--token-file',
    tokenFile,
  ];

  const f = await cli(['freeze', '--reason', 'release', '--for', '2h', ...base]);
  assert.equal(f.code, 0, f.err);
  const u = await cli([
    'freeze',
    '--reason',
    'weekend',
    '--until',
    '2030-01-01T00:00:00Z',
    ...base,
    '--json',
  ]);
  assert.equal(u.code, 0, u.err);
  assert.equal(u.out, answer, '--json: the body unchanged');
  assert.deepEqual(seen, [
    {
      method: 'POST',
      url: '/v1/freeze',
      auth: 'Bearer token-from-the-file-0123456789',
      body: { reason: 'release', for: '2h' },
    },
    {
      method: 'POST',
      url: '/v1/freeze',
      auth: 'Bearer token-from-the-file-0123456789',
      body: { reason: 'weekend', until: '2030-01-01T00:00:00Z' },
    },
  ]);
  // A body of another shape (here: a status where a drift list is due) is said so, not a stack trace.
  const odd = await cli(['drift', ...base]);
  assert.equal(odd.code, 1);
  assert.match(
    odd.err,
    /^steward: the admin API answered in a shape this steward cannot show .*--json prints it as it came$/,
  );
  const st = await cli(['status', ...base]);
  assert.match(
    st.out,
    /^frozen +yes, since .* by admin-api: r\n +ends in \d+d \(2030-01-01T00:00:00\.000Z\)$/m,
  );
});
