/**
 * A changed fetch downloads the change, not the tree: steward asks for a thin
 * pack (when the server offers it) and resolves its deltas against the
 * objects it already has. Real git http-backend, real git commits.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { advertisedCapabilities, requestThinPack } from '../../agent/source/http-client.js';
import { GitRepository } from '../../agent/source/git.js';
import { createTestRepo } from '../helpers/git-repo.js';
import { startGitServer } from '../helpers/git-server.js';

const N = 300;
const doc = (i: number, v: string) =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: f${i} }\nspec: { path: f/${i}.conf, content: "${v} ${i} ${'x'.repeat(200)}" }\n`;

test('a one-file change is fetched as a thin pack a fraction of the first fetch, and reads back correctly', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-thin-'));
  const server = await startGitServer({ projectRoot: base });
  t.after(async () => {
    await server.stop();
    await rm(base, { recursive: true, force: true });
  });
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  for (let i = 0; i < N; i++) await repo.write(`fleet/d${Math.floor(i / 50)}/f${i}.yaml`, doc(i, 'v1'));
  await repo.commitAndPush('v1');
  const src = new GitRepository({
    url: server.repoUrl('desired'),
    kind: 'http',
    ref: 'main',
    path: 'fleet',
    auth: null,
    cacheDir: join(base, 'cache'),
  });

  const packBytes = () =>
    server.requests
      .filter((r) => r.method === 'POST' && r.service === 'git-upload-pack')
      .reduce((s, r) => s + r.bytesOut, 0);
  server.clearRequests();
  const v1 = await src.resolve();
  await src.ensure(v1.sha, v1.fullRef);
  const first = packBytes();

  await repo.write('fleet/d3/f170.yaml', doc(170, 'v2'));
  await repo.commitAndPush('v2');
  server.clearRequests();
  const v2 = await src.resolve();
  await src.ensure(v2.sha, v2.fullRef);
  const changed = packBytes();
  assert.ok(
    changed * 20 < first,
    `changed fetch ${changed} B vs first ${first} B: a thin pack, not the whole tree`,
  );

  const read = await src.readManifests(v2.sha);
  assert.equal(read.files.length, N);
  assert.match(read.files.find((f) => f.file === 'fleet/d3/f170.yaml')!.text, /v2 170/);
  assert.match(read.files.find((f) => f.file === 'fleet/d0/f1.yaml')!.text, /v1 1 /);
});

test('thin-pack is requested only on the first want line, once', () => {
  const pkt = (s: string) => `${(s.length + 4).toString(16).padStart(4, '0')}${s}`;
  const body = Buffer.from(`${pkt('want abc multi_ack side-band-64k\n')}${pkt('want def\n')}0000`, 'latin1');
  const out = requestThinPack(body).toString('latin1');
  assert.equal(out, `${pkt('want abc multi_ack side-band-64k thin-pack\n')}${pkt('want def\n')}0000`);
  assert.equal(requestThinPack(Buffer.from(out, 'latin1')).toString('latin1'), out, 'idempotent');
  const advert = Buffer.from(
    `${pkt('# service=git-upload-pack\n')}0000${pkt('abc HEAD\0multi_ack thin-pack shallow\n')}0000`,
    'latin1',
  );
  assert.deepEqual([...advertisedCapabilities(advert)].sort(), ['multi_ack', 'shallow', 'thin-pack']);
});
