/**
 * Real headless chromium (Debian's /usr/bin/chromium) driven over a pipe by
 * puppeteer-core, for the dashboard tests. One browser per test file: launch
 * it in `before`, close it in `after`. Each page records what a test needs to
 * check that nothing went wrong: every request's URL, console errors, CSP
 * violations (reported from inside the page) and dialogs (alert/confirm).
 */
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM = process.env['STEWARD_TEST_CHROMIUM'] ?? '/usr/bin/chromium';

/** Chromium as installed by scripts/test-prerequisites.mjs (Debian's package); a missing one fails the launch. */
export async function launchBrowser(): Promise<Browser> {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return puppeteer.launch({
    executablePath: CHROMIUM,
    pipe: true,
    headless: true,
    args: [
      '--headless=new',
      ...(root ? ['--no-sandbox'] : []),
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--metrics-recording-only',
    ],
  });
}

export interface WatchedPage {
  page: Page;
  /** Every request the page made (URLs). */
  requests: string[];
  /** console.error lines (`text @ url`; chromium logs each 4xx it loaded) and uncaught page errors. */
  errors: string[];
  /** `securitypolicyviolation` events: "directive blockedURI". */
  cspViolations: string[];
  /** alert/confirm/prompt dialogs opened by the page (dismissed at once). */
  dialogs: string[];
}

/** A fresh page in its own browser context (its own sessionStorage), watched from its first request. */
export async function watchedPage(browser: Browser): Promise<WatchedPage> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const w: WatchedPage = { page, requests: [], errors: [], cspViolations: [], dialogs: [] };
  page.on('request', (r) => w.requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') w.errors.push(`${m.text()} @ ${m.location().url ?? ''}`);
  });
  page.on('pageerror', (e) => w.errors.push(String(e)));
  page.on('dialog', (d) => {
    w.dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  await page.exposeFunction('__stewardCspViolation', (v: string) => {
    w.cspViolations.push(v);
  });
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      (window as unknown as { __stewardCspViolation(v: string): void }).__stewardCspViolation(
        `${e.violatedDirective} ${e.blockedURI}`,
      );
    });
  });
  return w;
}
