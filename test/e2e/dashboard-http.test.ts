/**
 * The dashboard's files over HTTP (no browser), against a real daemon: the
 * headers on every file, revalidation, what is not a dashboard file (404 in
 * the error shape), that no spelling through /ui reaches an API route
 * without the token, that the files load nothing from elsewhere and hold no
 * inline script or style, and that a built dist/ serves them too.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { PUBLIC_PATHS, ROUTES } from '../../agent/admin/routes.js';
import { UI_ASSETS, UI_CSP, UI_DIR, UI_HEADERS } from '../../agent/admin/ui.js';
import { silentLogger } from '../../agent/log.js';
import { startOneFileDaemon } from '../helpers/daemon.js';
import { rawRequest } from '../helpers/raw-http.js';

test('every dashboard file: 200 with its type, the CSP and the hardening headers; If-None-Match revalidates to 304', async (t) => {
  const d = await startOneFileDaemon(t);
  const types: Record<string, RegExp> = {
    '/ui': /^text\/html; charset=utf-8$/,
    '/ui/app.js': /^text\/javascript; charset=utf-8$/,
    '/ui/app.css': /^text\/css; charset=utf-8$/,
  };
  assert.deepEqual(
    UI_ASSETS.map((a) => a.url),
    Object.keys(types),
  );
  for (const a of UI_ASSETS) {
    const r = await d.req('GET', a.url, { auth: false });
    assert.equal(r.status, 200, a.url);
    assert.match(r.headers.get('content-type') ?? '', types[a.url]!, a.url);
    assert.equal(r.headers.get('content-security-policy'), UI_CSP, a.url);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', a.url);
    assert.equal(r.headers.get('referrer-policy'), 'no-referrer', a.url);
    assert.equal(r.headers.get('x-frame-options'), 'DENY', a.url);
    assert.equal(r.headers.get('cache-control'), 'no-cache', a.url);
    assert.equal(r.text, await readFile(new URL(a.file, UI_DIR), 'utf8'), `${a.url} is ${a.file}`);
    const etag = r.headers.get('etag');
    assert.match(etag ?? '', /^"[A-Za-z0-9_-]+"$/, a.url);
    const again = await d.req('GET', a.url, { auth: false, headers: { 'if-none-match': etag! } });
    assert.equal(again.status, 304, a.url);
    assert.equal(again.text, '');
    assert.equal(again.headers.get('content-security-policy'), UI_CSP, `${a.url} 304`);
  }
  assert.equal(
    UI_CSP,
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  );
  assert.equal(UI_HEADERS['content-security-policy'], UI_CSP);
});

test('anything else under /ui is a 404 in the error shape; spellings through /ui reach no API route without the token', async (t) => {
  const d = await startOneFileDaemon(t);
  for (const target of [
    '/ui/x',
    '/ui/',
    '/ui/index.html',
    '/ui/app.js.map',
    '/ui/APP.JS',
    '/UI',
    '/ui/app.js/',
    '/ui/%2e%2e/agent/admin/ui.ts',
    '/ui/..%2f..%2fpackage.json',
    '/ui/../../package.json',
    '/ui/..%5c..%5cpackage.json',
  ]) {
    const r = await rawRequest(d.url, { method: 'GET', target });
    assert.equal(r.status, 404, `${target}: ${r.body.slice(0, 200)}`);
    assert.deepEqual(
      {
        code: (r.json as { error: { code: string } }).error.code,
        keys: Object.keys((r.json as { error: object }).error).sort(),
      },
      { code: 'NOT_FOUND', keys: ['code', 'message'] },
      target,
    );
    assert.ok(!r.body.includes('"name"'), `${target} leaks no file`);
  }
  for (const target of [
    '/ui/../v1/status',
    '/ui/..%2fv1/status',
    '/ui/%2e%2e/v1/status',
    '/ui/./../v1/drift',
  ]) {
    const r = await rawRequest(d.url, { method: 'GET', target });
    assert.ok(r.status === 401 || r.status === 404, `${target} → ${r.status} without the token`);
    assert.ok(!r.body.includes('"mode"') && !r.body.includes('"drift"'), `${target} shows no API data`);
  }
  // Only GET: a POST to a dashboard file is 405 before its body is read.
  const post = await rawRequest(d.url, {
    method: 'POST',
    target: '/ui',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  assert.equal(post.status, 405);
  assert.equal(post.headers['allow'], 'GET');
  // The API behind the page still needs the token.
  for (const path of ['/v1/status', '/v1/drift', '/v1/audit'])
    assert.equal((await d.req('GET', path, { auth: false })).status, 401, path);
});

test('the dashboard files are public on purpose, exactly these three, and in ROUTES (so the auth corpus attacks them)', () => {
  const ui = UI_ASSETS.map((a) => a.url);
  for (const url of ui) {
    assert.ok(PUBLIC_PATHS.has(url), `${url} is public`);
    const r = ROUTES.find((x) => x.url === url);
    assert.ok(r, `${url} is in ROUTES`);
    assert.equal(r.auth, 'none');
    assert.equal(r.method, 'GET');
  }
  assert.deepEqual(
    [...PUBLIC_PATHS].filter((p) => p.startsWith('/ui')),
    ui,
  );
  assert.deepEqual(
    ROUTES.filter((r) => r.url.startsWith('/ui')).map((r) => r.url),
    ui,
  );
});

test('the files load nothing from elsewhere and hold no inline script, style or handler (the CSP would block them)', async () => {
  const html = await readFile(new URL('index.html', UI_DIR), 'utf8');
  const js = await readFile(new URL('app.js', UI_DIR), 'utf8');
  const css = await readFile(new URL('app.css', UI_DIR), 'utf8');
  assert.deepEqual(
    [...html.matchAll(/<script\b[^>]*>[^<]*<\/script>/g)].map((m) => m[0]),
    ['<script type="module" src="/ui/app.js"></script>'],
    'one script, from /ui/app.js, nothing inline',
  );
  assert.deepEqual(
    [...html.matchAll(/<link\b[^>]*>/g)].map((m) => m[0]),
    ['<link rel="stylesheet" href="/ui/app.css" />'],
  );
  assert.ok(!/<style\b/i.test(html), 'no <style>');
  assert.ok(!/\sstyle=/i.test(html), 'no style attribute');
  assert.ok(!/\son[a-z]+=/i.test(html), 'no inline handler');
  for (const [name, text] of [
    ['index.html', html],
    ['app.js', js],
    ['app.css', css],
  ] as const) {
    assert.ok(
      !/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i.test(text.replace(/^\s*\/\/.*$/gm, '')),
      `${name}: no external URL`,
    );
    assert.ok(!/@import|url\(/i.test(name === 'app.css' ? text : ''), `${name}: no imports`);
  }
  // Data is put in the page as text only.
  for (const sink of [
    'innerHTML',
    'outerHTML',
    'insertAdjacentHTML',
    'document.write',
    'eval(',
    'new Function',
  ])
    assert.ok(!js.includes(sink), `app.js uses no ${sink}`);
  assert.ok(!/localStorage/.test(js), 'the token is never put in localStorage');
});

test('a built dist/ finds its dashboard files next to its own ui.js', {
  skip:
    !existsSync(new URL('../../dist/agent/admin/ui.js', import.meta.url)) &&
    'dist/ is not built (npm test builds it first)',
}, async () => {
  const dist = (await import(
    new URL('../../dist/agent/admin/ui.js', import.meta.url).href
  )) as typeof import('../../agent/admin/ui.js');
  assert.match(dist.UI_DIR.pathname, /\/dist\/agent\/admin\/ui\/$/);
  const assets = await dist.loadUiAssets(silentLogger);
  assert.deepEqual(
    [...assets.keys()],
    UI_ASSETS.map((a) => a.url),
  );
  for (const a of UI_ASSETS)
    assert.equal(
      assets.get(a.url)?.body.toString('utf8'),
      await readFile(new URL(a.file, UI_DIR), 'utf8'),
      `dist ${a.file} is the source's`,
    );
});
