/**
 * Start-up failures have a registered code and a hint, and nothing is
 * created before them (no state dir, no lock, no token file); the API's own
 * error answers (405, 415, bad encodings, malformed HTTP) keep the documented
 * `{error: {code, message}}` shape.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../agent/config.js';
import { startDaemon } from '../../agent/daemon.js';
import { type ERROR_CODES, isStewardError } from '../../core/errors.js';
import { silentLogger } from '../../agent/log.js';
import { startOneFileDaemon } from '../helpers/daemon.js';
import { createTestRepo } from '../helpers/git-repo.js';
import { rawRequest } from '../helpers/raw-http.js';

/** Every path under `dir`, recursively (directories end with `/`). */
async function tree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = join(prefix, e.name);
    if (e.isDirectory()) out.push(`${rel}/`, ...(await tree(dir, rel)));
    else out.push(rel);
  }
  return out.sort();
}

/** Writes a config (plus `prepare`'s files) in a temp dir, starts the daemon, expects `code`. */
async function expectStartFailure(
  t: { after: (fn: () => Promise<void>) => void },
  admin: string,
  code: keyof typeof ERROR_CODES,
  prepare: (dir: string) => Promise<void> = async () => undefined,
): Promise<{ dir: string; message: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'steward-start-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const repo = await createTestRepo({ projectRoot: dir, name: 'desired' });
  await repo.write(
    'fleet/a.yaml',
    'apiVersion: steward/v1\nkind: File\nmetadata: { name: a }\nspec: { path: a.conf }\n',
  );
  await repo.commit('v1');
  await mkdir(join(dir, 'managed'));
  await writeFile(
    join(dir, 'steward.yaml'),
    [
      `source: { url: ${JSON.stringify(repo.workDir)}, ref: main, path: fleet }`,
      'providers: { file: { root: managed } }',
      `admin: ${admin}`,
      'state: { dir: state }',
      'log: { level: error }',
    ].join('\n'),
  );
  await prepare(dir);
  const config = await loadConfig(join(dir, 'steward.yaml'));
  const before = await tree(dir);
  let message = '';
  await assert.rejects(startDaemon(config, { log: silentLogger, manual: true }), (e: unknown) => {
    assert.ok(isStewardError(e), `a StewardError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    message = e.message;
    return true;
  });
  assert.deepEqual(await tree(dir), before, 'nothing was created');
  return { dir, message };
}

test('the admin port is taken: ADMIN_LISTEN_FAILED with a hint; no state dir, lock or token is created', async (t) => {
  const blocker: Server = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as { port: number }).port;
  const { dir, message } = await expectStartFailure(
    t,
    `{ listen: "127.0.0.1:${port}" }`,
    'ADMIN_LISTEN_FAILED',
  );
  assert.match(message, /EADDRINUSE/);
  assert.match(message, /admin\.listen/);
  await assert.rejects(stat(join(dir, 'state')), { code: 'ENOENT' });
});

test('an empty webhook secret file: WEBHOOK_SECRET_EMPTY, not a silently disabled webhook', async (t) => {
  const { message } = await expectStartFailure(
    t,
    '{ listen: "127.0.0.1:0", webhookSecretFile: hook-secret }',
    'WEBHOOK_SECRET_EMPTY',
    (dir) => writeFile(join(dir, 'hook-secret'), '\n'),
  );
  assert.match(message, /hook-secret/);
});

test('a token file that is a directory: ADMIN_TOKEN_UNREADABLE', async (t) => {
  const { message } = await expectStartFailure(
    t,
    '{ listen: "127.0.0.1:0", tokenFile: tokendir }',
    'ADMIN_TOKEN_UNREADABLE',
    (dir) => mkdir(join(dir, 'tokendir')),
  );
  assert.match(message, /tokendir/);
});

test('a state dir that is a regular file: STATE_DIR_INVALID', async (t) => {
  const { message } = await expectStartFailure(
    t,
    '{ listen: "127.0.0.1:0", tokenFile: admin-token }',
    'STATE_DIR_INVALID',
    (dir) => writeFile(join(dir, 'state'), 'not a directory\n'),
  );
  assert.match(message, /state\.dir/);
});

test('API contract: 405 with Allow for other and unknown methods, 415, and fastify-level errors in the {error:{code,message}} shape', async (t) => {
  const d = await startOneFileDaemon(t);
  const auth = { authorization: `Bearer ${d.token}` };
  const cases: Array<[string, string, Record<string, string>, string | undefined, number, string, string?]> =
    [
      ['PATCH', '/v1/mode', auth, '{"mode":"observe"}', 405, 'METHOD_NOT_ALLOWED', 'PUT'],
      ['PROPFIND', '/v1/status', auth, undefined, 405, 'METHOD_NOT_ALLOWED', 'GET'],
      ['DELETE', '/v1/freeze', {}, undefined, 405, 'METHOD_NOT_ALLOWED', 'POST'],
      ['HEAD', '/v1/status', {}, undefined, 405, 'METHOD_NOT_ALLOWED', 'GET'],
      [
        'POST',
        '/v1/freeze',
        { ...auth, 'content-type': 'text/plain' },
        'reason=x',
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
      [
        'POST',
        '/v1/freeze',
        { ...auth, 'content-type': 'application/jsonx' },
        '{}',
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
      ['GET', '/v1/%zz', auth, undefined, 400, 'BAD_REQUEST'],
      ['GET', '/v1/status%', auth, undefined, 400, 'BAD_REQUEST'],
      ['GET', '/healthz%C0', {}, undefined, 400, 'BAD_REQUEST'],
      ['BREW', '/v1/status', auth, undefined, 400, 'BAD_REQUEST'],
      ['GET', '/v1/status', { ...auth, 'x-big': 'a'.repeat(20_000) }, undefined, 431, 'BAD_REQUEST'],
      ['GET', '/nope', {}, undefined, 404, 'NOT_FOUND'],
    ];
  for (const [method, target, headers, body, status, code, allow] of cases) {
    const r = await rawRequest(d.url, { method, target, headers, ...(body !== undefined ? { body } : {}) });
    const what = `${method} ${target}: ${r.status} ${r.body.slice(0, 200)}`;
    assert.equal(r.status, status, what);
    if (method === 'HEAD') continue; // no body on HEAD answers
    const err = (r.json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    assert.deepEqual(Object.keys(err ?? {}).sort(), ['code', 'message'], what);
    assert.equal(err?.code, code, what);
    if (allow) assert.equal(r.headers['allow'], allow, what);
  }
  assert.equal(d.daemon.agent.currentState.mode, null);
  assert.equal(d.daemon.agent.currentState.freeze, null);
});
