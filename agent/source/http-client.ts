/**
 * The HTTP client handed to isomorphic-git: our own, on node:http/node:https,
 * because isomorphic-git's (simple-get) follows every redirect with the same
 * headers — Basic credentials included — to wherever it points.
 *
 * Fail closed (SPEC §9):
 * - Credentials are added here, at the one place requests are sent, and only
 *   to requests whose origin (scheme, host, port) is the configured one; any
 *   Authorization header from isomorphic-git is dropped.
 * - Redirects are followed only within that origin, at most MAX_REDIRECTS
 *   hops; one to another origin, from https to http, or of a POST that cannot
 *   be replayed fails the poll with SOURCE_REDIRECT_REFUSED naming where it
 *   pointed (userinfo and query removed). Like git, when the ref advertisement
 *   was redirected, later requests use the redirected base URL.
 * - Response bodies are bounded (the ref advertisement and error bodies by
 *   MAX_ADVERTISEMENT_BYTES, the pack by MAX_PACK_BYTES): past the limit the
 *   connection is destroyed and the read fails with SOURCE_TOO_LARGE.
 * - A response must start within RESPONSE_TIMEOUT_MS and never go silent for
 *   IDLE_TIMEOUT_MS, else the poll fails (SOURCE_UNREACHABLE).
 *
 * Not done: asking for `thin-pack`. isomorphic-git leaves it out, so
 * `git upload-pack` answers a shallow (`deepen 1`) fetch with the whole tree
 * even when one file changed. Adding it cut a one-file fetch from ~3 MB to
 * ~1 kB in bench/git-source.ts, but isomorphic-git 1.44's pack indexer then
 * looped until out of memory on a thin pack for a revision whose content came
 * back to an earlier one (found by test/e2e/alerts.test.ts under load). A
 * native git engine is the way to thin packs.
 *
 * One compatibility fix: when a remote's HEAD names a branch that does not
 * exist, `git upload-pack` advertises no HEAD line, and isomorphic-git's fetch
 * then fails with "Could not find HEAD" even though we asked for a specific
 * ref. We add a HEAD line (pointing at the first advertised ref) to such
 * advertisements; it only feeds isomorphic-git's guess of the remote's default
 * branch, which we never use.
 */
// biome-ignore lint/style/noRestrictedImports: types only, erased at build
import type * as http from 'node:http';
import { nodeHttp, nodeHttps } from '../../core/builtins.js';
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';
import { StewardError } from '../../core/errors.js';

const MiB = 1024 * 1024;
/** Largest ref advertisement (and error body) read from the source. */
export const MAX_ADVERTISEMENT_BYTES = 8 * MiB;
/** Largest upload-pack response (the pack) read from the source. */
export const MAX_PACK_BYTES = 512 * MiB;
/** Same-origin redirects followed for one request. */
export const MAX_REDIRECTS = 5;
/** Time from sending a request to its status line and headers. */
export const RESPONSE_TIMEOUT_MS = 30_000;
/** Longest silence of the connection while a response is awaited or read. */
export const IDLE_TIMEOUT_MS = 30_000;

export interface HttpLimits {
  maxAdvertisementBytes: number;
  maxPackBytes: number;
  maxRedirects: number;
  responseTimeoutMs: number;
  idleTimeoutMs: number;
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = {
  maxAdvertisementBytes: MAX_ADVERTISEMENT_BYTES,
  maxPackBytes: MAX_PACK_BYTES,
  maxRedirects: MAX_REDIRECTS,
  responseTimeoutMs: RESPONSE_TIMEOUT_MS,
  idleTimeoutMs: IDLE_TIMEOUT_MS,
};

export interface GitHttpOptions {
  /** `source.url`: its origin is the only one credentials go to and redirects may lead to. */
  url: string;
  auth: { username: string; password: string } | null;
  counters: HttpCounters;
  limits?: Partial<HttpLimits>;
}

export interface HttpCounters {
  requests: number;
  /** POSTs to git-upload-pack: pack negotiations and downloads. */
  packRequests: number;
  bytesIn: number;
}

function pktLine(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from((b.length + 4).toString(16).padStart(4, '0'), 'ascii'), b]);
}

/** Splits pkt-lines: a payload string, or null for a flush packet. Returns null if malformed. */
export function parsePktLines(buf: Buffer): Array<string | null> | null {
  const out: Array<string | null> = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = Number.parseInt(buf.subarray(off, off + 4).toString('ascii'), 16);
    if (Number.isNaN(len)) return null;
    if (len === 0) {
      out.push(null);
      off += 4;
      continue;
    }
    if (len < 4 || off + len > buf.length) return null;
    out.push(buf.subarray(off + 4, off + len).toString('utf8'));
    off += len;
  }
  return off === buf.length ? out : null;
}

/** Adds a HEAD ref line to a v1 upload-pack advertisement that has none. Exported for tests. */
export function ensureHeadAdvertised(buf: Buffer): Buffer {
  const lines = parsePktLines(buf);
  if (!lines) return buf;
  const firstRef = lines.findIndex((l, i) => l !== null && i > 0 && !l.startsWith('#'));
  const first = lines[firstRef];
  if (firstRef < 0 || typeof first !== 'string') return buf;
  const nul = first.indexOf('\0');
  if (nul < 0) return buf;
  const [sha, name] = first.slice(0, nul).split(' ');
  if (!sha || !name || name === 'HEAD' || name === 'capabilities^{}') return buf;
  if (lines.some((l) => typeof l === 'string' && l.split('\0')[0]!.trimEnd().endsWith(' HEAD'))) return buf;
  const caps = first.slice(nul + 1);
  const rebuilt = lines.flatMap((l, i) => {
    if (i !== firstRef) return [l];
    return [`${sha} HEAD\0${caps}`, `${sha} ${name}\n`];
  });
  return Buffer.concat(rebuilt.map((l) => (l === null ? Buffer.from('0000', 'ascii') : pktLine(l))));
}

async function* once(buf: Buffer): AsyncIterableIterator<Uint8Array> {
  yield buf;
}

/** A URL fit for a log line or an error: no userinfo, no query, no fragment. */
export function displayUrl(u: string | URL): string {
  try {
    const url = new URL(u);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return '(an unparsable URL)';
  }
}

export type RedirectDecision = { follow: URL } | { refuse: string; to?: string };

/** Where a redirect from `from` may go: only to `origin`, never from https to http. Exported for tests. */
export function redirectTarget(from: URL, location: string | undefined, origin: string): RedirectDecision {
  if (!location) return { refuse: `answered ${displayUrl(from)} with a redirect without a Location` };
  let to: URL;
  try {
    to = new URL(location, from);
  } catch {
    return { refuse: `redirected ${displayUrl(from)} to an unparsable Location` };
  }
  const shown = displayUrl(to);
  if (from.protocol === 'https:' && to.protocol !== 'https:')
    return { refuse: `redirected from https to ${to.protocol.replace(/:$/, '')}, to ${shown}`, to: shown };
  if (to.origin !== origin) return { refuse: `redirected to another origin, ${shown}`, to: shown };
  to.username = '';
  to.password = '';
  to.hash = '';
  return { follow: to };
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const ADVERT_SUFFIX = /\/info\/refs\?service=[^&]*$/;

function size(bytes: number): string {
  return bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${bytes} bytes`;
}

async function collect(body: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/**
 * The HTTP client for one configured source: credentials only to its origin,
 * same-origin redirects only, bounded bodies, response and idle timeouts.
 */
export function gitHttpClient(opts: GitHttpOptions): HttpClient {
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...opts.limits };
  const configured = new URL(opts.url);
  const origin = configured.origin;
  const { counters } = opts;
  const authorization = opts.auth
    ? `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`
    : undefined;
  /** Like git: after the advertisement was redirected, the POSTs go to the redirected base. */
  let moved: { from: string; to: string } | null = null;

  const refused = (reason: string, to?: string): StewardError =>
    new StewardError(
      'SOURCE_REDIRECT_REFUSED',
      `the Git source ${displayUrl(configured)} ${reason}; steward sends credentials only to ${origin} and follows redirects only within it: set source.url to the repository's final URL`,
      to ? { to } : {},
    );
  const seconds = (ms: number): string => `${ms / 1000} s`;

  /** The one place requests are sent; the only place credentials are added. */
  const send = (
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    failure: { error?: Error },
  ): Promise<http.IncomingMessage> =>
    new Promise((resolve, reject) => {
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        reject(refused(`led to a ${url.protocol} URL`));
        return;
      }
      counters.requests++;
      const h: Record<string, string> = {};
      for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() !== 'authorization') h[k] = v;
      if (authorization && url.origin === origin) h['authorization'] = authorization;
      if (body) h['content-length'] = String(body.length);
      const r = (url.protocol === 'https:' ? nodeHttps() : nodeHttp()).request({
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        method,
        headers: h,
      });
      const fail = (message: string): void => {
        failure.error = new StewardError('SOURCE_UNREACHABLE', `${message}; check the server and source.url`);
        r.destroy(failure.error);
      };
      const shown = displayUrl(url);
      const timer = setTimeout(
        () => fail(`no response from ${shown} within ${seconds(limits.responseTimeoutMs)}`),
        limits.responseTimeoutMs,
      );
      r.setTimeout(limits.idleTimeoutMs, () =>
        fail(`no data from ${shown} for ${seconds(limits.idleTimeoutMs)}`),
      );
      r.on('response', (res) => {
        clearTimeout(timer);
        resolve(res);
      });
      r.on('error', (e) => {
        clearTimeout(timer);
        reject(failure.error ?? e);
      });
      r.end(body);
    });

  /** Streams a response body, counting it; past `limit` drops the connection and fails. */
  async function* bounded(
    res: http.IncomingMessage,
    limit: number,
    what: string,
    url: URL,
    failure: { error?: Error },
  ): AsyncIterableIterator<Uint8Array> {
    let n = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        n += chunk.length;
        if (n > limit) {
          failure.error = new StewardError(
            'SOURCE_TOO_LARGE',
            `the ${what} from ${displayUrl(url)} is larger than ${size(limit)}; steward stopped reading it. Check that source.url is the right repository, or keep the manifests in a smaller one`,
            { limit },
          );
          res.destroy();
          throw failure.error;
        }
        counters.bytesIn += chunk.length;
        yield chunk;
      }
    } catch (e) {
      throw failure.error ?? e;
    } finally {
      if (!res.complete) res.destroy();
    }
  }

  return {
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      const method = req.method ?? 'GET';
      const isPack = method === 'POST' && req.url.endsWith('/git-upload-pack');
      if (isPack) counters.packRequests++;
      const isAdvert = method === 'GET' && ADVERT_SUFFIX.test(req.url);
      const body = req.body ? await collect(req.body) : undefined;
      const requested =
        !isAdvert && moved && req.url.startsWith(`${moved.from}/`)
          ? `${moved.to}${req.url.slice(moved.from.length)}`
          : req.url;
      let url = new URL(requested);
      const failure: { error?: Error } = {};
      let res = await send(url, method, req.headers ?? {}, body, failure);
      for (let hops = 0; REDIRECTS.has(res.statusCode ?? 0); hops++) {
        res.destroy();
        const decision = redirectTarget(url, res.headers.location, origin);
        if ('refuse' in decision) throw refused(decision.refuse, decision.to);
        if (hops >= limits.maxRedirects)
          throw refused(`answered with too many redirects (more than ${limits.maxRedirects})`);
        if (method !== 'GET' && res.statusCode !== 307 && res.statusCode !== 308)
          throw refused(`answered a ${method} with a ${res.statusCode} redirect, which would drop its body`);
        url = decision.follow;
        res = await send(url, method, req.headers ?? {}, body, failure);
      }
      if (isAdvert) {
        const base = req.url.replace(ADVERT_SUFFIX, '');
        const final = url.href.replace(ADVERT_SUFFIX, '');
        moved = url.href !== req.url && ADVERT_SUFFIX.test(url.href) ? { from: base, to: final } : null;
      }
      const status = res.statusCode ?? 0;
      const response = {
        url: url.href,
        method,
        statusCode: status,
        statusMessage: res.statusMessage ?? '',
        headers: res.headers as Record<string, string>,
      };
      if (isPack && status === 200)
        return { ...response, body: bounded(res, limits.maxPackBytes, 'pack', url, failure) };
      const what = isAdvert && status === 200 ? 'ref advertisement' : `HTTP ${status} response`;
      const all = await collect(bounded(res, limits.maxAdvertisementBytes, what, url, failure));
      return { ...response, body: once(isAdvert && status === 200 ? ensureHeadAdvertised(all) : all) };
    },
  };
}
