/** The admin API over a real loopback socket, against a running daemon. */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTestRepo, type TestRepo } from '../helpers/git-repo.js';
import { type DaemonHarness, startDaemonHarness } from '../helpers/daemon.js';
import { contentReplace } from '../helpers/content-op.js';

const file = (name: string, content: string) =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: { path: ${name}.conf, content: ${JSON.stringify(content)} }\n`;

async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  opts: { manual?: boolean; mode?: 'observe' | 'enforce'; files?: number } = {},
): Promise<{ d: DaemonHarness; repo: TestRepo }> {
  const base = await mkdtemp(join(tmpdir(), 'steward-admin-'));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  for (let i = 0; i < (opts.files ?? 3); i++)
    await repo.write(`fleet/f${i}.yaml`, file(`f${i}`, `v1 ${i}\n`));
  await repo.commit('v1');
  const d = await startDaemonHarness({
    sourceUrl: repo.workDir,
    manual: opts.manual ?? true,
    mode: opts.mode ?? 'enforce',
    guardrails:
      'soak: { observeCycles: 0 }\nmassDrift: { maxDrifted: 100, maxDriftedPercent: 100, minManaged: 5 }',
  });
  t.after(async () => {
    await d.stop();
    await rm(base, { recursive: true, force: true });
  });
  return { d, repo };
}

/** Polls the source and runs one cycle through the API, waiting for it to finish. */
async function cycle(d: DaemonHarness): Promise<void> {
  const before = d.daemon.agent.cycles;
  assert.equal((await d.req('POST', '/v1/reconcile')).status, 202);
  await d.daemon.agent.idle();
  assert.ok(d.daemon.agent.cycles > before, 'a cycle ran');
}

test('the token: generated with mode 0600; 401 without it, with a wrong one, or with another scheme', async (t) => {
  const { d } = await setup(t);
  const st = await stat(join(d.stateDir, 'admin-token'));
  assert.equal(st.mode & 0o777, 0o600);
  assert.ok(d.token.length >= 32);
  for (const auth of [false, 'wrong-token-wrong-token', `${d.token}x`] as const) {
    const r = await d.req('GET', '/v1/status', { auth });
    assert.equal(r.status, 401);
    assert.deepEqual(Object.keys((r.json as { error: object }).error).sort(), ['code', 'message']);
    assert.equal((r.json as { error: { code: string } }).error.code, 'UNAUTHORIZED');
  }
  const basic = await d.req('GET', '/v1/status', {
    auth: false,
    headers: { authorization: `Basic ${d.token}` },
  });
  assert.equal(basic.status, 401);
  // Unauthenticated requests change nothing.
  assert.equal((await d.req('POST', '/v1/freeze', { auth: false, body: { reason: 'x' } })).status, 401);
  assert.equal(d.daemon.agent.currentState.freeze, null);
  assert.equal((await d.req('GET', '/v1/status')).status, 200);
  assert.equal((await d.req('GET', '/healthz', { auth: false })).status, 200);
});

test('/readyz turns 200 only after a good cycle; POST /v1/reconcile runs one', async (t) => {
  const { d } = await setup(t);
  assert.equal((await d.req('GET', '/readyz', { auth: false })).status, 503);
  await cycle(d);
  const r = await d.req('GET', '/readyz', { auth: false });
  assert.equal(r.status, 200);
  assert.equal(await readFile(join(d.root, 'f0.conf'), 'utf8'), 'v1 0\n');
  const status = (await d.req('GET', '/v1/status')).json as {
    lastCycle: { applied: number };
    cycles: number;
  };
  assert.equal(status.lastCycle.applied, 3);
});

test('freeze via the API stops actions while /v1/drift still lists the drift; unfreeze resumes', async (t) => {
  const { d } = await setup(t);
  await cycle(d);
  await cycle(d); // the applies are verified as converged
  const fr = await d.req('POST', '/v1/freeze', { body: { reason: 'incident 7' } });
  assert.equal(fr.status, 200);
  const fs = fr.json as { freeze: { frozen: boolean; reason: string; by: string; since: string } };
  assert.equal(fs.freeze.frozen, true);
  assert.equal(fs.freeze.reason, 'incident 7');
  await writeFile(join(d.root, 'f1.conf'), 'hand edit\n');
  await cycle(d);
  assert.equal(await readFile(join(d.root, 'f1.conf'), 'utf8'), 'hand edit\n');
  const drift = (await d.req('GET', '/v1/drift')).json as {
    drift: Array<{
      name: string;
      patch: unknown[];
      held: string;
      firstSeen: string;
      attempts: number;
      state: string;
    }>;
  };
  assert.equal(drift.drift.length, 1);
  assert.equal(drift.drift[0]!.name, 'f1');
  assert.equal(drift.drift[0]!.held, 'frozen');
  assert.deepEqual(drift.drift[0]!.patch, [
    contentReplace('hand edit\n', 'v1 1\n', '@@ -1,1 +1,1 @@\n-hand edit\n+v1 1\n'),
  ]);
  assert.equal(typeof drift.drift[0]!.firstSeen, 'string');
  // Unfreezing an unfrozen agent is a conflict; unfreezing a frozen one works.
  assert.equal((await d.req('POST', '/v1/unfreeze')).status, 200);
  assert.equal((await d.req('POST', '/v1/unfreeze')).status, 409);
  await cycle(d);
  assert.equal(await readFile(join(d.root, 'f1.conf'), 'utf8'), 'v1 1\n');
});

test('PUT /v1/mode round-trips and persists across a restart of the state', async (t) => {
  const { d } = await setup(t);
  const r = await d.req('PUT', '/v1/mode', { body: { mode: 'observe' } });
  assert.equal(r.status, 200);
  assert.equal((r.json as { mode: string }).mode, 'observe');
  assert.equal(((await d.req('GET', '/v1/status')).json as { mode: string }).mode, 'observe');
  const persisted = JSON.parse(await readFile(join(d.stateDir, 'state.json'), 'utf8')) as {
    state: { mode: string };
  };
  assert.equal(persisted.state.mode, 'observe');
  await cycle(d);
  await assert.rejects(readFile(join(d.root, 'f0.conf')), { code: 'ENOENT' }, 'observe mode acts on nothing');
});

test('bad input gets a clear 4xx, never a 5xx, and changes nothing', async (t) => {
  const { d } = await setup(t);
  const cases: Array<[string, string, Parameters<DaemonHarness['req']>[2], number, string]> = [
    ['POST', '/v1/freeze', { raw: '{"reason": "x"' }, 400, 'BAD_REQUEST'],
    ['POST', '/v1/freeze', { body: {} }, 400, 'BAD_REQUEST'],
    ['POST', '/v1/freeze', { body: { reason: 42 } }, 400, 'BAD_REQUEST'],
    ['POST', '/v1/freeze', { body: { reason: '' } }, 400, 'BAD_REQUEST'],
    ['POST', '/v1/freeze', { body: { reason: 'x', extra: true } }, 400, 'BAD_REQUEST'],
    ['POST', '/v1/freeze', { body: { reason: 'x'.repeat(20_000) } }, 413, 'PAYLOAD_TOO_LARGE'],
    [
      'POST',
      '/v1/freeze',
      { raw: 'reason=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    ['PUT', '/v1/mode', { body: { mode: 'yolo' } }, 400, 'BAD_REQUEST'],
    ['PUT', '/v1/mode', { body: { mode: ['enforce'] } }, 400, 'BAD_REQUEST'],
    ['POST', '/v1/unfreeze', { body: { approveRevision: 'not-a-sha' } }, 400, 'BAD_REQUEST'],
    ['GET', '/v1/audit?limit=0', {}, 400, 'BAD_REQUEST'],
    ['GET', '/v1/audit?limit=abc', {}, 400, 'BAD_REQUEST'],
    ['GET', '/v1/audit?bogus=1', {}, 400, 'BAD_REQUEST'],
    ['DELETE', '/v1/freeze', {}, 405, 'METHOD_NOT_ALLOWED'],
    ['GET', '/v1/freeze', {}, 405, 'METHOD_NOT_ALLOWED'],
    ['POST', '/v1/status', {}, 405, 'METHOD_NOT_ALLOWED'],
    ['GET', '/v1/nope', {}, 404, 'NOT_FOUND'],
    ['GET', '/../../etc/passwd', {}, 404, 'NOT_FOUND'],
  ];
  for (const [method, path, opts, status, code] of cases) {
    const r = await d.req(method, path, opts);
    assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
    assert.equal((r.json as { error: { code: string } }).error.code, code, `${method} ${path}`);
    assert.equal(typeof (r.json as { error: { message: string } }).error.message, 'string');
  }
  const st = d.daemon.agent.currentState;
  assert.equal(st.freeze, null);
  assert.equal(st.mode, null);
});

test('/openapi.json documents every route; /metrics is Prometheus text', async (t) => {
  const { d } = await setup(t);
  const doc = (await d.req('GET', '/openapi.json', { auth: false })).json as {
    openapi: string;
    paths: Record<string, Record<string, unknown>>;
  };
  assert.equal(doc.openapi, '3.1.0');
  for (const [path, method] of [
    ['/v1/status', 'get'],
    ['/v1/drift', 'get'],
    ['/v1/freeze', 'post'],
    ['/v1/unfreeze', 'post'],
    ['/v1/mode', 'put'],
    ['/v1/reconcile', 'post'],
    ['/v1/hooks/git', 'post'],
    ['/v1/audit', 'get'],
    ['/healthz', 'get'],
    ['/readyz', 'get'],
    ['/metrics', 'get'],
  ] as const)
    assert.ok(doc.paths[path]?.[method], `${method} ${path}`);
  const m = await d.req('GET', '/metrics', { auth: false });
  assert.equal(m.status, 200);
  assert.match(m.headers.get('content-type') ?? '', /text\/plain/);
  assert.match(m.text, /^# HELP steward_managed_resources /m);
  assert.match(m.text, /^process_cpu_seconds_total /m);
});

/** Reads one sample value (no labels) from Prometheus text. */
const sample = (text: string, name: string): number => {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} missing`);
  return Number(m[1]);
};

test('/metrics follows the drift: up when files are tampered, down when reverted; no resource ids or SHAs in labels', async (t) => {
  const { d, repo } = await setup(t, { files: 4, mode: 'observe' });
  await cycle(d);
  let m = (await d.req('GET', '/metrics', { auth: false })).text;
  assert.equal(sample(m, 'steward_managed_resources'), 4);
  assert.equal(sample(m, 'steward_drifted_resources'), 4);
  assert.equal(sample(m, 'steward_observe_only'), 1);
  await d.req('PUT', '/v1/mode', { body: { mode: 'enforce' } });
  await cycle(d);
  await cycle(d);
  m = (await d.req('GET', '/metrics', { auth: false })).text;
  assert.equal(sample(m, 'steward_drifted_resources'), 0);
  assert.equal(sample(m, 'steward_observe_only'), 0);
  assert.match(m, /^steward_actions_total\{kind="File",outcome="applied"\} 4$/m);
  await writeFile(join(d.root, 'f0.conf'), 'x');
  await writeFile(join(d.root, 'f1.conf'), 'y');
  await d.req('POST', '/v1/freeze', { body: { reason: 'look' } });
  await cycle(d);
  m = (await d.req('GET', '/metrics', { auth: false })).text;
  assert.equal(sample(m, 'steward_drifted_resources'), 2);
  assert.equal(sample(m, 'steward_frozen'), 1);
  await d.req('POST', '/v1/unfreeze');
  await cycle(d);
  await cycle(d);
  m = (await d.req('GET', '/metrics', { auth: false })).text;
  assert.equal(sample(m, 'steward_drifted_resources'), 0);
  assert.equal(sample(m, 'steward_frozen'), 0);
  assert.match(m, /^steward_convergence_seconds_count \d+$/m);
  const sha = await repo.head();
  const shaLines = m.split('\n').filter((l) => l.includes(sha));
  assert.deepEqual(
    shaLines.map((l) => l.split('{')[0]),
    ['steward_desired_revision_info'],
  );
  assert.ok(!m.includes('f0.conf') && !m.includes('File/f0'), 'no resource ids in labels');
});

test('the push webhook: a valid signature makes a new commit take effect at once (source.interval is 1h); a bad one changes nothing', async (t) => {
  const { d, repo } = await setup(t, { manual: false });
  await d.daemon.agent.idle();
  await d.req('POST', '/v1/reconcile');
  await d.daemon.agent.idle();
  assert.equal(await readFile(join(d.root, 'f0.conf'), 'utf8'), 'v1 0\n');
  await repo.write('fleet/f0.yaml', file('f0', 'v2 0\n'));
  await repo.commit('v2');
  const body = JSON.stringify({ ref: 'refs/heads/main', after: await repo.head() });
  const sign = (b: string, secret = d.webhookSecret) =>
    `sha256=${createHmac('sha256', secret).update(b).digest('hex')}`;
  const hook = (b: string, sig?: string, event = 'push') =>
    d.req('POST', '/v1/hooks/git', {
      raw: b,
      auth: false,
      headers: { 'x-github-event': event, ...(sig ? { 'x-hub-signature-256': sig } : {}) },
    });

  for (const sig of [
    undefined,
    sign(body, 'wrong-secret'),
    sign(`${body} `),
    'sha256=zz',
    `sha1=${'0'.repeat(40)}`,
  ]) {
    const r = await hook(body, sig);
    assert.equal(r.status, 401, String(sig));
  }
  await d.daemon.agent.idle();
  assert.equal(await readFile(join(d.root, 'f0.conf'), 'utf8'), 'v1 0\n', 'a bad signature changes nothing');

  const other = JSON.stringify({ ref: 'refs/heads/feature' });
  const ignored = await hook(other, sign(other));
  assert.equal(ignored.status, 202);
  assert.equal((ignored.json as { accepted: boolean }).accepted, false);
  assert.equal((await hook('{}', sign('{}'), 'ping')).status, 200);

  const started = performance.now();
  const ok = await hook(body, sign(body));
  assert.equal(ok.status, 202);
  // Poll the file (bounded): the change lands without waiting for the 1 h source interval.
  while ((await readFile(join(d.root, 'f0.conf'), 'utf8')) !== 'v2 0\n') {
    assert.ok(performance.now() - started < 10_000, 'the pushed change never arrived');
    await new Promise((r) => setImmediate(r));
  }
});

test('a push webhook that arrives while a poll from before the push is in flight still brings the push in', async (t) => {
  const { d, repo } = await setup(t, { manual: false });
  await d.daemon.agent.idle();
  const source = d.daemon.agent.source;
  const original = source.poll.bind(source);
  // The next poll reads the ref (before the push), then is held until the webhook has been answered.
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  let read!: () => void;
  const refRead = new Promise<void>((r) => {
    read = r;
  });
  let first = true;
  source.poll = async () => {
    if (!first) return original();
    first = false;
    const outcome = await original();
    read();
    await held;
    return outcome;
  };
  const inFlight = d.daemon.agent.poll();
  await refRead;
  await repo.write('fleet/f0.yaml', file('f0', 'v2 0\n'));
  await repo.commit('v2');
  const body = JSON.stringify({ ref: 'refs/heads/main', after: await repo.head() });
  const sig = `sha256=${createHmac('sha256', d.webhookSecret).update(body).digest('hex')}`;
  const ok = await d.req('POST', '/v1/hooks/git', {
    raw: body,
    auth: false,
    headers: { 'x-github-event': 'push', 'x-hub-signature-256': sig },
  });
  assert.equal(ok.status, 202);
  release();
  await inFlight;
  const started = performance.now();
  while ((await readFile(join(d.root, 'f0.conf'), 'utf8')) !== 'v2 0\n') {
    assert.ok(
      performance.now() - started < 10_000,
      'the push never arrived (the webhook joined the older poll)',
    );
    await new Promise((r) => setImmediate(r));
  }
});

test('a burst of pushes coalesces into few cycles', async (t) => {
  const { d } = await setup(t, { manual: false });
  await d.daemon.agent.idle();
  const before = d.daemon.agent.cycles;
  const body = JSON.stringify({ ref: 'refs/heads/main' });
  const sig = `sha256=${createHmac('sha256', d.webhookSecret).update(body).digest('hex')}`;
  const rs = await Promise.all(
    Array.from({ length: 20 }, () =>
      d.req('POST', '/v1/hooks/git', {
        raw: body,
        auth: false,
        headers: { 'x-github-event': 'push', 'x-hub-signature-256': sig },
      }),
    ),
  );
  assert.ok(rs.every((r) => r.status === 202));
  await d.daemon.agent.idle();
  const ran = d.daemon.agent.cycles - before;
  // A push that arrives while cycles run adds at most one follow-up cycle, however many arrive; how many
  // runs there are depends on how the pushes' polls interleave with the cycles (3–4 here), never 20.
  assert.ok(ran >= 1 && ran < 10, `20 pushes ran ${ran} cycles`);
});

test('GET /v1/audit lists applied actions newest first, with a limit', async (t) => {
  const { d } = await setup(t);
  await cycle(d);
  const all = (await d.req('GET', '/v1/audit')).json as {
    records: Array<{ name: string; outcome: string; patch: unknown[] }>;
    skipped: unknown[];
  };
  assert.equal(all.records.length, 6);
  assert.deepEqual(
    all.records.map((r) => `${r.name}:${r.outcome}`),
    ['f2:applied', 'f1:applied', 'f0:applied', 'f2:started', 'f1:started', 'f0:started'],
    'the intents, written ahead of the actions, then the outcomes',
  );
  const one = (await d.req('GET', '/v1/audit?limit=1')).json as { records: unknown[] };
  assert.equal(one.records.length, 1);
});

test('bad bodies are explained by the shared schema tooling, without echoing the value', async (t) => {
  const { d } = await setup(t);
  const cases: Array<[string, string, unknown, RegExp]> = [
    ['POST', '/v1/freeze', { reason: 'x', extra: 'SECRET-VALUE' }, /extra/],
    ['PUT', '/v1/mode', { mode: 'SECRET-MODE' }, /mode/],
    ['POST', '/v1/unfreeze', { approveRevision: 'SECRET-SHA' }, /approveRevision/],
  ];
  for (const [method, path, body, names] of cases) {
    const r = await d.req(method, path, { body });
    assert.equal(r.status, 400, path);
    const message = (r.json as { error: { message: string } }).error.message;
    assert.match(message, names, message);
    assert.doesNotMatch(message, /SECRET/, 'a string value is never echoed');
  }
});
