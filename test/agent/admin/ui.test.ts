/**
 * The dashboard's file table (agent/admin/ui.ts): real files in a temp
 * directory, a real fastify app answering through uiHandler (inject, no socket).
 */
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import Fastify from 'fastify';
import { loadUiAssets, UI_ASSETS, UI_CSP, UI_DIR, uiHandler } from '../../../agent/admin/ui.js';
import { createLogger } from '../../../agent/log.js';

test('a missing dashboard file is logged by name and answers 404 in the error shape; the others are served', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steward-ui-files-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const f of ['index.html', 'app.css']) await copyFile(new URL(f, UI_DIR), join(dir, f));
  const lines: string[] = [];
  const log = createLogger(
    'info',
    new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  const assets = await loadUiAssets(log, pathToFileURL(`${dir}/`));
  assert.deepEqual([...assets.keys()], ['/ui', '/ui/app.css']);
  assert.equal(lines.length, 1);
  const line = JSON.parse(lines[0]!) as { level: string; file: string; code: string; msg: string };
  assert.deepEqual(
    { level: line.level, file: line.file, code: line.code },
    { level: 'warn', file: 'app.js', code: 'ENOENT' },
  );
  assert.match(line.msg, /\/ui\/app\.js is not served/);
  assert.ok(!line.msg.includes(dir), 'the message names the file, not the install path');

  const app = Fastify();
  t.after(() => app.close());
  const handler = uiHandler(assets);
  for (const a of UI_ASSETS) app.get(a.url, handler);
  const missing = await app.inject({ method: 'GET', url: '/ui/app.js' });
  assert.equal(missing.statusCode, 404);
  assert.deepEqual(Object.keys(missing.json().error).sort(), ['code', 'message']);
  assert.equal(missing.json().error.code, 'NOT_FOUND');
  const page = await app.inject({ method: 'GET', url: '/ui' });
  assert.equal(page.statusCode, 200);
  assert.equal(page.headers['content-security-policy'], UI_CSP);
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
});

test('the ETag follows the content: a changed file gets a new one, so a cached copy is not reused', async (t) => {
  const a = await mkdtemp(join(tmpdir(), 'steward-ui-a-'));
  const b = await mkdtemp(join(tmpdir(), 'steward-ui-b-'));
  t.after(async () => {
    await rm(a, { recursive: true, force: true });
    await rm(b, { recursive: true, force: true });
  });
  for (const f of UI_ASSETS.map((x) => x.file)) {
    await copyFile(new URL(f, UI_DIR), join(a, f));
    await copyFile(new URL(f === 'app.js' ? 'app.css' : f, UI_DIR), join(b, f)); // b's app.js differs
  }
  const silent = createLogger('silent');
  const one = await loadUiAssets(silent, pathToFileURL(`${a}/`));
  const two = await loadUiAssets(silent, pathToFileURL(`${b}/`));
  assert.equal(one.get('/ui')?.etag, two.get('/ui')?.etag, 'same content, same ETag');
  assert.notEqual(one.get('/ui/app.js')?.etag, two.get('/ui/app.js')?.etag);
});
