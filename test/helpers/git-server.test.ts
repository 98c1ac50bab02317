/**
 * Self-test of the git smart-HTTP test server and the repo helper, using the real git CLI as client.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { createTestRepo, git, isolatedGitEnv, type TestRepo } from './git-repo.js';
import { type GitServer, startGitServer } from './git-server.js';

const AUTH = { username: 'steward', password: 's3cret' };

interface Fixture {
  server: GitServer;
  repo: TestRepo;
  /** Scratch directory for clones (outside the served project root). */
  scratch: string;
}

/** Creates a temp dir, a repo with one pushed commit and a running server; cleans up after the test. */
async function setup(
  t: TestContext,
  opts: { auth?: typeof AUTH; headPointsTo?: string } = {},
): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'steward-git-server-'));
  const projectRoot = join(dir, 'srv');
  const scratch = join(dir, 'scratch');
  await mkdir(projectRoot);
  await mkdir(scratch);
  const repo = await createTestRepo({ projectRoot, name: 'desired', headPointsTo: opts.headPointsTo });
  await repo.write('hosts/web.yaml', 'kind: File\nspec:\n  content: hello\n');
  await repo.commitAndPush('initial');
  const server = await startGitServer({ projectRoot, auth: opts.auth });
  t.after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { server, repo, scratch };
}

/** `-c http.extraHeader=Authorization: Basic ...` for the given credentials. */
function basicAuthArgs(auth: typeof AUTH): string[] {
  const token = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
  return ['-c', `http.extraHeader=Authorization: Basic ${token}`];
}

/** Resolves to 'refused' when nothing listens on the port, 'connected' otherwise. */
function probe(port: number): Promise<'refused' | 'connected'> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') resolve('refused');
      else reject(err);
    });
  });
}

test('clone over HTTP with Basic auth header yields the committed content', async (t) => {
  const { server, repo, scratch } = await setup(t, { auth: AUTH });
  const dest = join(scratch, 'clone');
  await git(scratch, [...basicAuthArgs(AUTH), 'clone', '--quiet', server.repoUrl('desired'), dest]);
  assert.equal(await readFile(join(dest, 'hosts/web.yaml'), 'utf8'), 'kind: File\nspec:\n  content: hello\n');
  assert.equal(await git(dest, ['rev-parse', 'HEAD']), await repo.head());
  assert.ok(server.requests.length > 0);
  assert.ok(server.requests.every((r) => r.authorized && r.status === 200));
  assert.ok(server.requests.some((r) => r.bytesOut > 0));
});

test('clone with credentials in the URL works', async (t) => {
  const { server, scratch } = await setup(t, { auth: AUTH });
  const url = server.repoUrl('desired').replace('http://', `http://${AUTH.username}:${AUTH.password}@`);
  const dest = join(scratch, 'clone');
  await git(scratch, ['clone', '--quiet', url, dest]);
  assert.match(await readFile(join(dest, 'hosts/web.yaml'), 'utf8'), /content: hello/);
  assert.ok(server.packRequests() >= 1);
});

test('clone without credentials or with a wrong password fails with 401', async (t) => {
  const { server, scratch } = await setup(t, { auth: AUTH });
  await assert.rejects(git(scratch, ['clone', '--quiet', server.repoUrl('desired'), join(scratch, 'a')]));
  const wrong = basicAuthArgs({ ...AUTH, password: 'nope' });
  await assert.rejects(
    git(scratch, [...wrong, 'clone', '--quiet', server.repoUrl('desired'), join(scratch, 'b')]),
  );
  assert.ok(server.requests.length >= 2);
  assert.ok(server.requests.every((r) => r.status === 401 && !r.authorized));
  assert.equal(server.packRequests(), 0);
});

test('ls-remote only asks for info/refs; a clone downloads a pack', async (t) => {
  const { server, repo, scratch } = await setup(t);
  const out = await git(scratch, ['ls-remote', server.repoUrl('desired')]);
  assert.match(out, new RegExp(`^${await repo.head()}\\s+refs/heads/main$`, 'm'));
  assert.ok(server.requests.length >= 1);
  assert.ok(server.requests.every((r) => r.method === 'GET' && r.path === '/desired.git/info/refs'));
  assert.equal(server.requests[0]?.service, 'git-upload-pack');
  assert.equal(server.packRequests(), 0);

  server.clearRequests();
  assert.equal(server.requests.length, 0);
  await git(scratch, ['clone', '--quiet', server.repoUrl('desired'), join(scratch, 'clone')]);
  assert.ok(server.packRequests() >= 1);
});

test('failWith(503) breaks the remote until failWith(null)', async (t) => {
  const { server, scratch } = await setup(t);
  server.failWith(503);
  await assert.rejects(git(scratch, ['ls-remote', server.repoUrl('desired')]), /503/);
  assert.ok(server.requests.length >= 1);
  assert.ok(server.requests.every((r) => r.status === 503));
  server.failWith(null);
  assert.match(await git(scratch, ['ls-remote', server.repoUrl('desired')]), /refs\/heads\/main/);
});

test('new commits pushed by the repo helper are visible over HTTP, and HTTP push works', async (t) => {
  const { server, repo, scratch } = await setup(t);
  await repo.remove('hosts/web.yaml');
  await repo.write('hosts/db.yaml', 'kind: File\n');
  const sha = await repo.commitAndPush('second');
  assert.match(
    await git(scratch, ['ls-remote', server.repoUrl('desired'), 'refs/heads/main']),
    new RegExp(sha),
  );

  const dest = join(scratch, 'clone');
  await git(scratch, ['clone', '--quiet', server.repoUrl('desired'), dest]);
  await assert.rejects(readFile(join(dest, 'hosts/web.yaml'), 'utf8'));
  await git(dest, ['commit', '--quiet', '--allow-empty', '-m', 'via http']);
  await git(dest, ['push', '--quiet', 'origin', 'HEAD:refs/heads/main']);
  assert.equal(
    await git(repo.bareDir, ['rev-parse', 'refs/heads/main']),
    await git(dest, ['rev-parse', 'HEAD']),
  );
  assert.ok(server.requests.some((r) => r.method === 'POST' && r.service === 'git-receive-pack'));
});

test('headPointsTo makes the remote HEAD name a missing branch', async (t) => {
  const { server, repo, scratch } = await setup(t, { headPointsTo: 'does-not-exist' });
  assert.equal(await git(repo.bareDir, ['symbolic-ref', 'HEAD']), 'refs/heads/does-not-exist');
  const out = await git(scratch, ['ls-remote', server.repoUrl('desired')]);
  assert.match(out, /refs\/heads\/main/);
  assert.doesNotMatch(out, /\tHEAD$/m);
});

/** Feeds a `git fast-import` stream to the repo at `cwd`. */
function fastImport(cwd: string, stream: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      ['fast-import', '--quiet'],
      { cwd, env: isolatedGitEnv() },
      (err, _out, stderr) => (err ? reject(new Error(`fast-import failed: ${stderr}`)) : resolve()),
    );
    child.stdin?.end(stream);
  });
}

/**
 * Sends a POST that announces a body longer than it writes, then aborts; resolves once the socket is gone.
 * `Expect: 100-continue` makes the server run its handler (spawning the CGI) before the client aborts.
 */
function abortedPost(url: string): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-git-upload-pack-request',
        'Content-Length': '100000',
        Expect: '100-continue',
      },
    });
    req.on('continue', () => req.write('0032want ', () => req.destroy()));
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.flushHeaders();
  });
}

test('a clone with a large (gzip-encoded) want list works', async (t) => {
  const { server, repo, scratch } = await setup(t);
  let stream = '';
  for (let i = 0; i < 200; i++) {
    const msg = `commit ${i}`;
    stream += `commit refs/heads/b${i}\ncommitter T <t@t.invalid> 1700000000 +0000\ndata ${msg.length}\n${msg}\n`;
    stream += `M 644 inline f.txt\ndata ${String(i).length}\n${i}\n\n`;
  }
  await fastImport(repo.bareDir, stream);
  const dest = join(scratch, 'clone');
  await git(scratch, ['clone', '--quiet', '--no-single-branch', server.repoUrl('desired'), dest]);
  const branches = (await git(dest, ['branch', '-r'])).split('\n');
  assert.ok(branches.length >= 201);
  assert.equal(server.packRequests(), 1);
});

test('a missing repository yields 404 from http-backend', async (t) => {
  const { server, scratch } = await setup(t);
  await assert.rejects(git(scratch, ['ls-remote', server.repoUrl('nope')]));
  assert.equal(server.requests[0]?.status, 404);
});

test('a client abort mid-request does not break the server', async (t) => {
  const { server, scratch } = await setup(t);
  await abortedPost(`${server.repoUrl('desired')}/git-upload-pack`);
  assert.match(await git(scratch, ['ls-remote', server.repoUrl('desired')]), /refs\/heads\/main/);
  assert.equal(server.requests[0]?.method, 'POST');
});

test('stop() closes the listener and is idempotent', async (t) => {
  const { server, scratch } = await setup(t);
  await git(scratch, ['ls-remote', server.repoUrl('desired')]);
  const port = Number(new URL(server.baseUrl).port);
  assert.equal(await probe(port), 'connected');
  await server.stop();
  await server.stop();
  assert.equal(await probe(port), 'refused');
});
