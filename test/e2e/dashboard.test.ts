/**
 * The dashboard (SPEC §12) in real headless chromium, against a real daemon
 * on a loopback socket: the token prompt, a refused token, status and the
 * line diff of a tampered file, freeze (by keyboard) and unfreeze, approve,
 * the audit timeline; the token stays in sessionStorage, never in a URL;
 * nothing is requested from anywhere but the admin origin; the CSP holds (no
 * violations); hostile text from Git and the host is shown as text.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'puppeteer-core';
import { UI_CSP } from '../../agent/admin/ui.js';
import type { FleetView } from '../../agent/fleet/types.js';
import { launchBrowser, type WatchedPage, watchedPage } from '../helpers/browser.js';
import { type DaemonHarness, startDaemonHarness } from '../helpers/daemon.js';
import { createTestRepo } from '../helpers/git-repo.js';

const TOKEN_KEY = 'steward.adminToken';
/** A file name and content that run script if they are ever parsed as HTML. */
const XSS_PATH = '<img src=x onerror="window.__xss=1;alert(1)">.conf';
const XSS_CONTENT =
  '<script>window.__xss=2;alert(2)</script>\n<img src=x onerror="window.__xss=3;alert(3)">\n';

const file = (name: string, path: string, content: string, extra = '') =>
  `apiVersion: steward/v1\nkind: File\n${extra}metadata: { name: ${name} }\nspec: { path: ${JSON.stringify(path)}, content: ${JSON.stringify(content)} }\n`;

let browser: Browser;
let d: DaemonHarness;
let base: string;
let sha: string;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'steward-ui-'));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  await repo.write('fleet/app.yaml', file('app', 'app.conf', 'one\ntwo\nthree\n'));
  await repo.write('fleet/xss.yaml', file('xss', XSS_PATH, 'safe\n'));
  await repo.write('fleet/secret.yaml', file('secret', 'secret.conf', 'password=git\n', 'sensitive: true\n'));
  sha = await repo.commit('v1');
  d = await startDaemonHarness({
    sourceUrl: repo.workDir,
    manual: true,
    mode: 'enforce',
    guardrails:
      'soak: { observeCycles: 0 }\nmassDrift: { maxDrifted: 100, maxDriftedPercent: 100, minManaged: 5 }',
  });
  await cycle(); // creates the three files: `applied` lines in the audit
  assert.equal((await d.req('PUT', '/v1/mode', { body: { mode: 'observe' } })).status, 200);
  // Tampered on the host; observe mode keeps the drift in view.
  await writeFile(join(d.root, 'app.conf'), 'one\nTAMPERED\nthree\n');
  await writeFile(join(d.root, XSS_PATH), XSS_CONTENT);
  await writeFile(join(d.root, 'secret.conf'), 'password=host-secret-value\n');
  await cycle();
  const drift = (await d.req('GET', '/v1/drift')).json as { drift: unknown[] };
  assert.equal(drift.drift.length, 3, 'three drifted resources to show');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await d?.stop();
  await rm(base, { recursive: true, force: true });
});

async function cycle(): Promise<void> {
  const before = d.daemon.agent.cycles;
  assert.equal((await d.req('POST', '/v1/reconcile')).status, 202);
  await d.daemon.agent.idle();
  assert.ok(d.daemon.agent.cycles > before, 'a cycle ran');
}

const visible = (id: string) => `#${id}:not([hidden])`;

/** Opens /ui; returns the page and the main document's response headers. */
async function open(): Promise<{ w: WatchedPage; headers: Record<string, string> }> {
  const w = await watchedPage(browser);
  const res = await w.page.goto(`${d.url}/ui`, { waitUntil: 'load' });
  assert.equal(res?.status(), 200);
  return { w, headers: res!.headers() };
}

async function signIn(w: WatchedPage, value = d.token): Promise<void> {
  await w.page.waitForSelector(visible('login'));
  await w.page.type('#token', value);
  await w.page.keyboard.press('Enter');
}

/** Signs in and waits for the first full render. */
async function signedIn(): Promise<WatchedPage> {
  const { w } = await open();
  await signIn(w);
  await w.page.waitForSelector('body[data-loaded="true"]');
  return w;
}

/** What every page must have kept to: only the admin origin, no CSP violation, no error, no dialog. */
function assertClean(w: WatchedPage): void {
  const origin = new URL(d.url).origin;
  const elsewhere = w.requests.filter((u) => new URL(u).origin !== origin);
  assert.deepEqual(elsewhere, [], 'no request leaves the admin origin');
  assert.ok(w.requests.length > 0);
  assert.deepEqual(w.cspViolations, [], 'no CSP violation');
  // Chromium logs every 4xx as a console error: the favicon it asks for itself, and GET /v1/fleet
  // while this agent has no fleet (the page hides that section) are expected.
  const expected = [`${origin}/favicon.ico`, `${origin}/v1/fleet`];
  const errors = w.errors.filter(
    (e) =>
      !expected.some(
        (u) => e === `Failed to load resource: the server responded with a status of 404 (Not Found) @ ${u}`,
      ),
  );
  assert.deepEqual(errors, [], 'no console error');
  assert.deepEqual(w.dialogs, [], 'no alert/confirm');
  assert.ok(
    w.requests.every((u) => !u.includes(d.token)),
    'the token is in no URL',
  );
}

const text = (w: WatchedPage, sel: string) => w.page.$eval(sel, (el) => el.textContent ?? '');

test('without a token the page shows only the prompt and calls no API; the CSP header is sent', async () => {
  const { w, headers } = await open();
  await w.page.waitForSelector(visible('login'));
  assert.equal(headers['content-security-policy'], UI_CSP);
  assert.equal(await w.page.$eval('#app', (el) => (el as HTMLElement).hidden), true);
  assert.equal(await text(w, '#status-list'), '', 'no status rendered');
  // The page and its two files; chromium may also ask for /favicon.ico (a 404, same origin).
  const paths = new Set(w.requests.map((u) => new URL(u).pathname));
  paths.delete('/favicon.ico');
  assert.deepEqual([...paths].sort(), ['/ui', '/ui/app.css', '/ui/app.js'], 'no API call without a token');
  assert.equal(await w.page.evaluate(() => document.activeElement?.id), 'token', 'the prompt has focus');
  assertClean(w);
  await w.page.browserContext().close();
});

test('a wrong token shows an error and is not kept', async () => {
  const { w } = await open();
  await signIn(w, 'not-the-token-not-the-token');
  await w.page.waitForFunction(() =>
    /refused/.test(document.getElementById('login-error')?.textContent ?? ''),
  );
  assert.equal(await w.page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), null);
  assert.equal(await w.page.$eval('#app', (el) => (el as HTMLElement).hidden), true);
  // The refused call is the only thing to show in the console (chromium logs a failed fetch as an error).
  w.errors = w.errors.filter((e) => !/status of 401 .* @ http:\/\/127\.0\.0\.1:\d+\/v1\//.test(e));
  assertClean(w);
  await w.page.browserContext().close();
});

test('the right token shows the status and the drift: a line diff for the tampered file, digests for the sensitive one', async () => {
  const w = await signedIn();
  assert.equal(await text(w, '#status-mode'), 'observe');
  assert.match(await text(w, '#status-freeze'), /not frozen/);
  assert.equal(await w.page.$eval('#status-revision', (el) => el.getAttribute('title')), sha);
  assert.match(await text(w, '#status-list'), /writable/);

  const items = await w.page.$$eval('.drift-item', (els) =>
    els.map((el) => ({
      res: el.querySelector('.res')?.textContent,
      state: el.querySelector('.state')?.textContent,
      add: [...el.querySelectorAll('.diff .add')].map((s) => s.textContent),
      del: [...el.querySelectorAll('.diff .del')].map((s) => s.textContent),
      text: el.textContent ?? '',
    })),
  );
  const app = items.find((i) => i.res === 'File/app');
  assert.ok(app, 'File/app is listed');
  assert.equal(app.state, 'drifted');
  assert.deepEqual(app.del, ['-TAMPERED']);
  assert.deepEqual(app.add, ['+two']);
  const secret = items.find((i) => i.res === 'File/secret');
  assert.ok(secret, 'File/secret is listed');
  assert.deepEqual([...secret.add, ...secret.del], [], 'no diff for a sensitive resource');
  assert.match(secret.text, /digests only/);
  assert.match(secret.text, /sha256:[0-9a-f]{12}/);
  const page = await w.page.evaluate(() => document.body.textContent ?? '');
  assert.ok(
    !page.includes('host-secret-value') && !page.includes('password=git'),
    'no sensitive value shown',
  );

  // The audit timeline: the three creations, newest first.
  const audit = await w.page.$$eval('#audit-list li', (els) =>
    els.map((el) => ({
      outcome: el.querySelector('.outcome')?.textContent,
      at: el.querySelector('time')?.getAttribute('datetime'),
    })),
  );
  assert.equal(audit.filter((a) => a.outcome === 'applied').length, 3);
  assert.equal(audit.filter((a) => a.outcome === 'started').length, 3);
  const times = audit.map((a) => Date.parse(a.at ?? ''));
  assert.deepEqual(
    times,
    [...times].sort((a, b) => b - a),
    'newest first',
  );

  // Fleet: shown when the agent answers GET /v1/fleet, hidden on 404.
  const fleet = await d.req('GET', '/v1/fleet');
  assert.equal(await w.page.$eval('#fleet', (el) => (el as HTMLElement).hidden), fleet.status === 404);
  assertClean(w);
  await w.page.browserContext().close();
});

test('hostile text from Git and the host (a file name and its content) is shown as text, never run', async () => {
  const w = await signedIn();
  const xss = await w.page.$$eval('.drift-item', (els) => {
    const el = els.find((e) => e.querySelector('.res')?.textContent === 'File/xss');
    return el
      ? {
          id: el.querySelector('.res-id')?.textContent,
          del: [...el.querySelectorAll('.diff .del')].map((s) => s.textContent),
        }
      : null;
  });
  // Nothing of it ran: no script, no handler, no alert, no element made from it. (An injected
  // <img src=x> would be fetched and fail; its onerror runs once the network settles.)
  await w.page.waitForNetworkIdle({ idleTime: 200 });
  assert.equal(await w.page.evaluate(() => (window as { __xss?: unknown }).__xss), undefined);
  assert.deepEqual(w.dialogs, [], 'no alert');
  assert.equal(await w.page.$$eval('img', (els) => els.length), 0, 'no injected element');
  assert.ok(xss, 'File/xss is listed');
  assert.equal(xss.id, XSS_PATH, 'the file name, as text');
  assert.deepEqual(
    xss.del,
    XSS_CONTENT.trimEnd()
      .split('\n')
      .map((l) => `-${l}`),
    'the content, as text',
  );
  assert.deepEqual(await w.page.$$eval('script', (els) => els.map((e) => e.getAttribute('src'))), [
    '/ui/app.js',
  ]);
  assertClean(w);
  await w.page.browserContext().close();
});

test('keyboard: Tab reaches the freeze form, Enter on the freeze button freezes (the agent is frozen); unfreeze through the dialog', async () => {
  const w = await signedIn();
  const { page } = w;
  const reason = 'incident <b>42</b> & "maintenance"';
  // From the top of the page, Tab until the reason field, type, Tab until the button.
  const tabTo = async (id: string) => {
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate(() => document.activeElement?.id)) === id) return;
    }
    assert.fail(`Tab never reached #${id}`);
  };
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await tabTo('freeze-reason');
  await page.keyboard.type(reason);
  await tabTo('freeze-button');
  const outline = await page.$eval('#freeze-button', (el) => getComputedStyle(el).outlineStyle);
  assert.notEqual(outline, 'none', 'focus is visible');
  await page.keyboard.press('Enter');
  await page.waitForSelector(visible('banner'));
  assert.equal(await text(w, '#banner'), `FROZEN: ${reason}`);
  assert.match(await text(w, '#action-result'), /Freeze: done/);
  assert.equal(await page.$eval('#action-result', (el) => el.getAttribute('aria-live')), 'polite');
  const st = (await d.req('GET', '/v1/status')).json as {
    freeze: { frozen: boolean; reason: string; by: string };
  };
  assert.deepEqual(
    { frozen: st.freeze.frozen, reason: st.freeze.reason, by: st.freeze.by },
    { frozen: true, reason, by: 'admin-api' },
  );
  assert.match(await text(w, '#status-freeze'), /frozen: incident <b>42<\/b>/);

  await page.click('#unfreeze-button');
  await page.waitForSelector('#confirm[open]');
  await page.click('#confirm-ok');
  await page.waitForSelector('#banner[hidden]');
  assert.equal(
    ((await d.req('GET', '/v1/status')).json as { freeze: { frozen: boolean } }).freeze.frozen,
    false,
  );
  assertClean(w);
  await page.browserContext().close();
});

test('approve the current revision: confirmed in a dialog (a box to tick), then the agent is unfrozen with the approval', async () => {
  assert.equal((await d.req('POST', '/v1/freeze', { body: { reason: 'review first' } })).status, 200);
  const w = await signedIn();
  const { page } = w;
  await page.waitForSelector(visible('banner'));
  await page.click('#approve-button');
  await page.waitForSelector('#confirm[open]');
  assert.equal(await page.$eval('#confirm-ok', (el) => (el as HTMLButtonElement).disabled), true);
  await page.click('#confirm-check');
  await page.click('#confirm-ok');
  await page.waitForSelector('#banner[hidden]');
  const st = (await d.req('GET', '/v1/status')).json as {
    freeze: { frozen: boolean };
    approvals: Array<{ sha: string; by: string }>;
  };
  assert.equal(st.freeze.frozen, false);
  assert.deepEqual(
    st.approvals.map((a) => a.sha),
    [sha],
  );
  await page.waitForFunction(() =>
    /approved/.test(document.getElementById('status-list')?.textContent ?? ''),
  );
  assertClean(w);
  await page.browserContext().close();
});

test('the token is kept for the tab (sessionStorage), never in a URL or localStorage; forget and a 401 go back to the prompt', async () => {
  const w = await signedIn();
  const { page } = w;
  const stored = await page.evaluate(
    (k) => ({ session: sessionStorage.getItem(k), local: localStorage.length, href: location.href }),
    TOKEN_KEY,
  );
  assert.equal(stored.session, d.token);
  assert.equal(stored.local, 0);
  assert.equal(stored.href, `${d.url}/ui`);
  // The tab's history (as the browser keeps it): about:blank, then /ui; signing in navigated nowhere.
  const cdp = await page.createCDPSession();
  const { entries } = await cdp.send('Page.getNavigationHistory');
  await cdp.detach();
  assert.deepEqual(
    entries.map((e) => e.url),
    ['about:blank', `${d.url}/ui`],
  );
  // A reload keeps the tab signed in, without the prompt.
  await page.reload({ waitUntil: 'load' });
  await page.waitForSelector('body[data-loaded="true"]');
  assert.equal(await page.$eval('#login', (el) => (el as HTMLElement).hidden), true);
  // Forget: back to the prompt, nothing kept.
  await page.click('#forget');
  await page.waitForSelector(visible('login'));
  assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), null);
  assert.deepEqual(
    await page.evaluate(() => ({
      status: document.getElementById('status-list')?.childElementCount,
      drift: document.querySelectorAll('.drift-item').length,
      audit: document.getElementById('audit-list')?.childElementCount,
      loaded: document.body.dataset['loaded'] ?? null,
    })),
    { status: 0, drift: 0, audit: 0, loaded: null },
    'nothing read with the token stays in the page',
  );
  // A token the agent refuses (rotated, say): the next call's 401 brings the prompt back.
  await page.evaluate((k) => sessionStorage.setItem(k, 'rotated-away-rotated-away'), TOKEN_KEY);
  await page.reload({ waitUntil: 'load' });
  await page.waitForFunction(() => /refused/.test(document.getElementById('login-error')?.textContent ?? ''));
  assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), null);
  w.errors = w.errors.filter((e) => !/status of 401 .* @ http:\/\/127\.0\.0\.1:\d+\/v1\//.test(e));
  assertClean(w);
  await page.browserContext().close();
});

test('freeze with an end: the page sends `for` when given; the agent either takes it or its refusal is shown', async () => {
  const w = await signedIn();
  const { page } = w;
  const sent: string[] = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/v1/freeze') sent.push(r.postData() ?? '');
  });
  await page.type('#freeze-reason', 'short maintenance');
  await page.type('#freeze-for', '1h');
  const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/freeze');
  await page.click('#freeze-button');
  const res = await answered;
  assert.deepEqual(
    sent.map((b) => JSON.parse(b)),
    [{ reason: 'short maintenance', for: '1h' }],
  );
  await page.waitForFunction(() =>
    /Freeze/.test(document.getElementById('action-result')?.textContent ?? ''),
  );
  const st = (await d.req('GET', '/v1/status')).json as { freeze: { frozen: boolean; until?: string } };
  if (res.status() === 200) {
    // This agent supports freezes with an end (SPEC §12): the page shows when it ends.
    assert.equal(st.freeze.frozen, true);
    assert.ok(st.freeze.until, 'the freeze has an end');
    await page.waitForFunction(() =>
      /until /.test(document.getElementById('status-freeze')?.textContent ?? ''),
    );
    assert.equal((await d.req('POST', '/v1/unfreeze')).status, 200);
  } else {
    // It does not (yet): the API's refusal is announced and nothing changed.
    assert.equal(res.status(), 400);
    assert.match(await text(w, '#action-result'), /Freeze failed: BAD_REQUEST: /);
    assert.equal(st.freeze.frozen, false);
    assert.equal(
      await page.$eval('#freeze-reason', (el) => (el as HTMLInputElement).value),
      'short maintenance',
      'the form is kept to retry',
    );
    w.errors = w.errors.filter((e) => !/status of 400 .* @ http:\/\/127\.0\.0\.1:\d+\/v1\/freeze$/.test(e));
  }
  assertClean(w);
  await page.browserContext().close();
});

test('the fleet section renders GET /v1/fleet (waves, agents, a halt) as text', async () => {
  const hostile = '<img src=x onerror="window.__xss=4">';
  const fleet: FleetView = {
    backend: 'postgres',
    self: 'web-1',
    agents: [
      {
        id: 'web-1',
        labels: {},
        revision: sha,
        wave: 0,
        healthy: true,
        health: [],
        lastCycleAt: null,
        lastSeenAt: new Date().toISOString(),
        alive: true,
        frozen: false,
        drifted: 0,
      },
      {
        id: hostile,
        labels: { role: hostile },
        revision: null,
        wave: 1,
        healthy: false,
        health: [
          { name: 'http', kind: 'http', ok: false, detail: `HTTP 503 ${hostile}`, at: 0, durationMs: 3 },
        ],
        lastCycleAt: null,
        lastSeenAt: new Date().toISOString(),
        alive: false,
        frozen: true,
        drifted: 2,
      },
    ],
    rollout: {
      revision: sha,
      waves: [
        { index: 0, agents: ['web-1'], state: 'done', openedAt: new Date().toISOString(), bakeUntil: null },
        { index: 1, agents: [hostile], state: 'halted', openedAt: null, bakeUntil: null },
      ],
      halted: {
        at: new Date().toISOString(),
        reason: `health ${hostile}`,
        agents: [hostile],
        checks: ['http'],
      },
    },
  };
  // The rendering is pure logic: this agent's /v1/fleet answer is replaced by a fixed view.
  const { w } = await open();
  const { page } = w;
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/v1/fleet')
      void r.respond({ status: 200, contentType: 'application/json', body: JSON.stringify(fleet) });
    else void r.continue();
  });
  await signIn(w);
  await page.waitForSelector(`${visible('fleet')} .fleet-agent`);
  const waves = await page.$$eval('#fleet tr.wave', (rows) =>
    rows.map((r) => [...r.querySelectorAll('td')].slice(0, 3).map((td) => td.textContent)),
  );
  assert.deepEqual(waves, [
    ['0', 'done', 'web-1'],
    ['1', 'halted', hostile],
  ]);
  const agents = await page.$$eval('#fleet tr.fleet-agent', (rows) =>
    rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)),
  );
  assert.deepEqual(
    agents.map((a) => [a[0], a[3], a[4], a[5], a[6], a[8]]),
    [
      ['web-1', 'yes', 'yes', 'no', '0', ''],
      [hostile, 'no', 'no', 'yes', '2', `http: HTTP 503 ${hostile}`],
    ],
  );
  assert.match(await text(w, '#fleet-halted'), /halted at .*: health <img/);
  await page.waitForNetworkIdle({ idleTime: 200 });
  assert.equal(await page.$$eval('img', (els) => els.length), 0, 'no injected element');
  assertClean(w);
  await page.browserContext().close();
});

test('mode: Enforce… asks first and Escape cancels (nothing changes); Confirm switches; Observe switches back', async () => {
  const w = await signedIn();
  const { page } = w;
  const mode = async () => ((await d.req('GET', '/v1/status')).json as { mode: string }).mode;
  assert.equal(await mode(), 'observe');
  await page.click('#mode-enforce');
  await page.waitForSelector('#confirm[open]');
  assert.equal(
    await page.evaluate(() => document.activeElement?.id),
    'confirm-cancel',
    'the safe choice has focus',
  );
  await page.keyboard.press('Escape');
  await page.waitForSelector('#confirm:not([open])');
  await page.waitForFunction(() => (document.getElementById('action-result')?.textContent ?? '') !== '');
  assert.equal(await text(w, '#action-result'), 'Switch to enforce? Cancelled: nothing was changed.');
  assert.equal(await mode(), 'observe', 'Escape changed nothing');
  await page.click('#mode-enforce');
  await page.waitForSelector('#confirm[open]');
  await page.click('#confirm-ok');
  await page.waitForFunction(() => document.getElementById('status-mode')?.textContent === 'enforce');
  assert.equal(await mode(), 'enforce');
  await page.click('#mode-observe');
  await page.waitForFunction(() => document.getElementById('status-mode')?.textContent === 'observe');
  assert.equal(await mode(), 'observe');
  assertClean(w);
  await page.browserContext().close();
});

test('a section whose call fails says so, and the others still render', async () => {
  const { w } = await open();
  const { page } = w;
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/v1/audit')
      void r.respond({
        status: 500,
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'INTERNAL', message: 'internal error (see the agent log)' } }),
      });
    else void r.continue();
  });
  await signIn(w);
  await page.waitForSelector('body[data-loaded="true"]');
  assert.equal(await text(w, '#status-mode'), 'observe', 'the status renders');
  assert.ok((await page.$$('.drift-item')).length === 3, 'the drift renders');
  assert.equal(await page.$eval('#audit-error', (el) => (el as HTMLElement).hidden), false);
  assert.match(await text(w, '#audit-error'), /INTERNAL: internal error \(see the agent log\)/);
  assert.equal(await page.$eval('#status-error', (el) => (el as HTMLElement).hidden), true);
  w.errors = w.errors.filter(
    (e) => !/status of 500 .* @ http:\/\/127\.0\.0\.1:\d+\/v1\/audit\?limit=50$/.test(e),
  );
  assertClean(w);
  await page.browserContext().close();
});

test('polling: every few seconds a refresh, none while a confirmation dialog is open; an unchanged answer keeps the focus, a collapsed resource stays collapsed', async () => {
  // The page's timers of a second or more are held here and run on demand: no waiting on the clock.
  const w = await watchedPage(browser);
  const { page } = w;
  await page.evaluateOnNewDocument(() => {
    const held: Array<() => unknown> = [];
    const real = window.setTimeout.bind(window);
    (window as unknown as { __held: typeof held }).__held = held;
    window.setTimeout = ((fn: () => unknown, ms?: number, ...rest: unknown[]) => {
      if ((ms ?? 0) >= 1000) return held.push(fn);
      return real(fn, ms, ...rest);
    }) as typeof window.setTimeout;
  });
  await page.goto(`${d.url}/ui`);
  await signIn(w);
  await page.waitForSelector('body[data-loaded="true"]');
  const statusCalls = () => w.requests.filter((u) => new URL(u).pathname === '/v1/status').length;
  /** Runs the poll the page scheduled last (and waits for what it does). */
  const tick = () =>
    page.evaluate(async () => {
      const held = (window as unknown as { __held: Array<() => unknown> }).__held;
      if (held.length === 0) throw new Error('no poll scheduled');
      await held.pop()!();
    });
  const before = statusCalls();
  await tick();
  assert.equal(statusCalls(), before + 1, 'a poll refreshes');
  await page.click('#mode-enforce');
  await page.waitForSelector('#confirm[open]');
  await tick();
  await tick();
  assert.equal(statusCalls(), before + 1, 'no refresh while the dialog is open');
  await page.click('#confirm-cancel');
  await page.waitForSelector('#confirm:not([open])');
  await tick();
  assert.equal(statusCalls(), before + 2, 'polling resumes once it is closed');

  // An unchanged answer is not rendered again: the focus stays where it was.
  const summaryOf = (name: string) =>
    page.evaluateHandle(
      (n) =>
        [...document.querySelectorAll('.drift-item')]
          .find((e) => e.querySelector('.res')?.textContent === n)!
          .querySelector('summary')!,
      name,
    );
  await (await summaryOf('File/secret')).focus();
  await tick();
  assert.equal(
    await page.evaluate(() => document.activeElement?.querySelector('.res')?.textContent),
    'File/secret',
    'focus kept across a refresh',
  );
  // A collapsed resource stays collapsed when a new cycle's drift is rendered.
  await (await summaryOf('File/app')).click();
  const isOpen = (n: string) =>
    page.evaluate(
      (name) =>
        (
          [...document.querySelectorAll('.drift-item')].find(
            (e) => e.querySelector('.res')?.textContent === name,
          ) as HTMLDetailsElement
        ).open,
      n,
    );
  assert.equal(await isOpen('File/app'), false);
  const oldItem = await page.$('#drift-list .drift-item');
  await cycle();
  await tick();
  assert.equal(await oldItem!.evaluate((el) => el.isConnected), false, 'the new drift was rendered');
  assert.equal(await isOpen('File/app'), false, 'still collapsed after the new drift was rendered');
  assert.equal(await isOpen('File/secret'), true);
  assertClean(w);
  await page.browserContext().close();
});
