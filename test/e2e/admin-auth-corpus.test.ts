/**
 * The auth corpus (SPEC §9): every admin route × well over 100 spellings of
 * its path (percent-encoding in both cases, double slashes, dot segments,
 * case, trailing slash, `;` parameters, `?`/`#`, encoded slashes, unicode,
 * overlong UTF-8, absolute-form targets), sent byte for byte on a raw socket,
 * without and then with credentials, against a real daemon.
 *
 * Without credentials no variant may reach a non-public handler: the agent's
 * entry points that those handlers use are counted (must stay 0), no state
 * may change, no non-public variant may answer 2xx, and any variant that does
 * route (as seen with the token) must answer 401. With credentials, a variant
 * that routes must answer exactly like the canonical path.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { PUBLIC_PATHS, ROUTES, type RouteSpec } from '../../agent/admin/routes.js';
import type { Agent } from '../../agent/agent.js';
import { startOneFileDaemon } from '../helpers/daemon.js';
import { type RawResponse, rawRequest } from '../helpers/raw-http.js';

const pct = (c: string, lower = false): string => {
  const hex = Array.from(Buffer.from(c, 'utf8'), (b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  return lower ? hex : hex.toUpperCase();
};

/** Spellings of `path` that a lax router, proxy or decoder might take for it (deduplicated). */
export function pathVariants(path: string): string[] {
  const out = new Set<string>();
  const chars = [...path];
  const at = (i: number, s: string) => [...chars.slice(0, i), s, ...chars.slice(i + 1)].join('');
  chars.forEach((c, i) => {
    if (c === '/') {
      out.add(at(i, '//'));
      out.add(at(i, '/./'));
      out.add(at(i, '/x/../'));
      out.add(at(i, '/%2e/'));
      out.add(at(i, '/%2E%2e/v1/'));
      out.add(at(i, '%2F'));
      out.add(at(i, '%2f'));
      out.add(at(i, '\\'));
      out.add(at(i, '%5C'));
      out.add(at(i, '%C0%AF')); // overlong '/'
      out.add(at(i, '%E0%80%AF')); // overlong '/', 3 bytes
      return;
    }
    out.add(at(i, pct(c)));
    out.add(at(i, pct(c, true)));
    out.add(at(i, c.toUpperCase()));
    out.add(at(i, `%25${pct(c).slice(1)}`)); // double-encoded
    if (/[a-z]/.test(c)) {
      const code = c.charCodeAt(0);
      out.add(at(i, String.fromCharCode(code - 0x61 + 0xff41))); // fullwidth letter, raw UTF-8
      out.add(at(i, pct(String.fromCharCode(code - 0x61 + 0xff41)))); // fullwidth, encoded
      out.add(at(i, `%C1%${(0x80 + (code & 0x3f)).toString(16).toUpperCase()}`)); // overlong 2-byte
      out.add(at(i, `%u00${code.toString(16)}`)); // IIS-style
    }
    const next = chars[i + 1];
    if (next !== undefined && next !== '/')
      out.add([...chars.slice(0, i), pct(c), pct(next, true), ...chars.slice(i + 2)].join(''));
    if (/[0-9]/.test(c)) out.add(at(i, String.fromCharCode(0xff10 + Number(c)))); // fullwidth digit
  });
  const mixed = chars.map((c, i) => (c === '/' ? c : i % 2 ? pct(c) : pct(c, true))).join('');
  for (const v of [
    path,
    chars.map((c) => (c === '/' ? c : pct(c))).join(''),
    chars.map((c) => (c === '/' ? c : pct(c, true))).join(''),
    mixed,
    path.toUpperCase(),
    `${path}/`,
    `${path}//`,
    `${path}/.`,
    `${path}/./`,
    `${path}/..`,
    `${path}%2F`,
    `${path}%20`,
    `${path}%00`,
    `${path}%0a`,
    `${path}%09`,
    `${path}.`,
    `${path};`,
    `${path};x=1`,
    `${path};jsessionid=1`,
    `${path}?`,
    `${path}?x=1`,
    `${path}#`,
    `${path}#frag`,
    `${path}?#`,
    `/${path}`,
    `/.${path}`,
    `/./.${path}`,
    `/a/b/../..${path}`,
    `/%2e%2e${path}`,
    `/..${path}`,
    `/../..${path}`,
    `${path.replace('s', 'ſ')}`, // long s, upper-cases to S
    `${path.replace('k', 'K')}`, // Kelvin sign
    `${path.replace('i', 'İ')}`,
    `${path.replace('/', '%252F')}`,
    `http://127.0.0.1${path}`,
    `http://evil.example${path}`,
    `HTTP://127.0.0.1${path}`,
    `//127.0.0.1${path}`,
    `${path}${'/'.repeat(50)}`,
    `${'/'.repeat(20)}${path.slice(1)}`,
    `${path}?${'a'.repeat(4000)}=1`,
    `${path}%3F`,
    `${path}%23`,
    `${path}%3B`,
    `${path}?%00`,
    `%2F${path.slice(1)}`,
    `${path}/%2e%2e`,
    `${path}/x/..`,
    `/x/..${path}`,
    `/x/%2e%2e${path}`,
    `${path}%2F.`,
    // Bypass spellings known from other servers (Tomcat `..;/`, IIS, trailing junk); they also
    // give a path as short as `/ui` its hundred spellings.
    `${path}..;/`,
    `${path};/`,
    `${path}/;`,
    `${path}/%3B`,
    `${path}%2e`,
    `${path}/%2e`,
    `${path}/%2E`,
    `${path}%2f%2e%2e`,
    `${path}%00.html`,
    `${path}%ff`,
    `${path}%c0%ae`,
    `${path}/%u002e`,
    `${path}?%2F`,
    `${path}#/..`,
    `${path}/#`,
    `${path}/?`,
    `${path}%20/`,
    `${path}%5c`,
    `${path}%5C..%5C`,
    `/%5c..${path}`,
    `${path}*`,
    `${path}~`,
    `${path}%7e`,
    `${path}%2A`,
    `${path}%252e%252e`,
    `${path}/%252e`,
    `${path}%0d%0a`,
    `${path}..`,
    `${path}/...`,
    `${path}%E2%80%8B`, // zero-width space
    `${path}%EF%BC%8F`, // fullwidth solidus
  ])
    out.add(v);
  return [...out];
}

interface Counted {
  calls: Record<string, number>;
  total(): number;
}

/** Counts the agent entry points that non-public handlers use (real agent, wrapped in place). */
function countAgent(agent: Agent): Counted {
  const calls: Record<string, number> = {};
  const bump = (k: string) => {
    calls[k] = (calls[k] ?? 0) + 1;
  };
  const a = agent as unknown as Record<string, unknown>;
  for (const m of ['freeze', 'unfreeze', 'setMode', 'refresh', 'readAudit']) {
    const orig = (a[m] as (...args: unknown[]) => unknown).bind(agent);
    a[m] = (...args: unknown[]) => {
      bump(m);
      return orig(...args);
    };
  }
  const proto = Object.getPrototypeOf(agent) as object;
  const stateGetter = Object.getOwnPropertyDescriptor(proto, 'currentState')!.get!;
  Object.defineProperty(agent, 'currentState', {
    configurable: true,
    get() {
      bump('currentState');
      return stateGetter.call(agent);
    },
  });
  let lastCycle = a['lastCycle'];
  Object.defineProperty(agent, 'lastCycle', {
    configurable: true,
    get() {
      bump('lastCycle');
      return lastCycle;
    },
    set(v) {
      lastCycle = v;
    },
  });
  return { calls, total: () => Object.values(calls).reduce((x, y) => x + y, 0) };
}

/** Did the request reach a route at all (as opposed to the 404/405/bad-URL answers)? */
const routed = (r: RawResponse): boolean => {
  const code = (r.json as { error?: { code?: string } } | null)?.error?.code;
  if (r.status === 0) return false;
  if (code === 'NOT_FOUND' || code === 'METHOD_NOT_ALLOWED') return false;
  if (
    r.status === 400 &&
    /malformed (URL|HTTP)/.test(String((r.json as { error: { message: string } })?.error?.message))
  )
    return false;
  return true;
};

test('auth corpus: no spelling of any route reaches a non-public handler without credentials; with them, spellings that route behave like the canonical path', async (t) => {
  const d = await startOneFileDaemon(t, { mode: 'enforce' });
  const sign = (b: string) => `sha256=${createHmac('sha256', d.webhookSecret).update(b).digest('hex')}`;
  const sha = 'a'.repeat(40);

  // Bodies that would change state if a handler ran (no credentials), and bodies that fail validation
  // (with credentials: the same 400 proves the same route, auth and schema ran, and changes nothing).
  const unauthBody: Partial<Record<RouteSpec['id'], string>> = {
    freeze: '{"reason":"corpus"}',
    unfreeze: `{"approveRevision":"${sha}"}`,
    mode: '{"mode":"observe"}',
    reconcile: '{}',
    hook: '{"ref":"refs/heads/main"}',
  };
  const authBody: Partial<Record<RouteSpec['id'], string>> = {
    freeze: '{"bogus":1}',
    unfreeze: '{"bogus":1}',
    mode: '{"mode":"yolo"}',
    hook: '{"zen":"ping"}',
  };
  const send = (r: RouteSpec, target: string, withAuth: boolean) => {
    const body = (withAuth ? authBody : unauthBody)[r.id];
    const headers: Record<string, string> = body ? { 'content-type': 'application/json' } : {};
    if (withAuth && r.auth === 'hmac') {
      headers['x-hub-signature-256'] = sign(body ?? '');
      headers['x-github-event'] = 'ping';
    } else if (withAuth) headers['authorization'] = `Bearer ${d.token}`;
    return rawRequest(d.url, { method: r.method, target, headers, ...(body ? { body } : {}) });
  };

  const stateBefore = JSON.stringify(d.daemon.agent.currentState);
  const counted = countAgent(d.daemon.agent);

  let tried = 0;
  let routedCount = 0;
  const noAuth = new Map<string, RawResponse>();
  const leaks: string[] = [];
  const badShape: string[] = [];
  for (const r of ROUTES) {
    const variants = pathVariants(r.url);
    assert.ok(variants.length >= 100, `${r.url}: only ${variants.length} variants`);
    for (const v of variants) {
      const res = await send(r, v, false);
      tried++;
      noAuth.set(`${r.id} ${v}`, res);
      if (!PUBLIC_PATHS.has(r.url) && res.status >= 200 && res.status < 300)
        leaks.push(`${r.method} ${JSON.stringify(v)} → ${res.status}`);
      const code = (res.json as { error?: { code?: unknown } } | null)?.error?.code;
      if (res.status < 100 || (res.status >= 400 && typeof code !== 'string'))
        badShape.push(`${r.method} ${JSON.stringify(v)} → ${res.status} ${res.body.slice(0, 100)}`);
    }
  }
  assert.deepEqual(leaks, [], 'no 2xx from a non-public route without credentials');
  assert.deepEqual(counted.calls, {}, 'no non-public handler ran without credentials');
  assert.equal(JSON.stringify(d.daemon.agent.currentState), stateBefore, 'nothing changed');
  assert.deepEqual(badShape, [], 'every error answer is {error:{code,message}}');

  for (const r of ROUTES) {
    const canonicals = new Map<string, RawResponse>();
    /** The canonical path with the variant's query string (a query is validated on its own). */
    const canonicalFor = async (v: string) => {
      const q = v.search(/[?#]/); // fastify takes `#…` as a query string too
      const target = q >= 0 ? `${r.url}${v.slice(q)}` : r.url;
      if (!canonicals.has(target)) canonicals.set(target, await send(r, target, true));
      return canonicals.get(target)!;
    };
    assert.ok(routed(await canonicalFor(r.url)), `${r.url} routes`);
    for (const v of pathVariants(r.url)) {
      const res = await send(r, v, true);
      if (!routed(res)) continue;
      routedCount++;
      const canonical = await canonicalFor(v);
      const what = `${r.method} ${JSON.stringify(v)}`;
      assert.equal(res.status, canonical.status, `${what} with credentials: ${res.body.slice(0, 200)}`);
      assert.deepEqual(
        (res.json as { error?: unknown } | null)?.error,
        (canonical.json as { error?: unknown } | null)?.error,
        what,
      );
      if (r.auth !== 'none') {
        const without = noAuth.get(`${r.id} ${v}`)!;
        assert.equal(without.status, 401, `${what} routes, so without credentials it must be 401`);
      }
    }
  }
  console.log(
    `auth corpus: ${ROUTES.length} routes, ${tried} variants tried without credentials (and again with), ${routedCount} of them route to a handler`,
  );
});
