/**
 * The HTTP client handed to isomorphic-git: node's client, plus request and
 * byte counters (for metrics and tests), plus one compatibility fix.
 *
 * Not done: asking for `thin-pack`. isomorphic-git leaves it out, so
 * `git upload-pack` answers a shallow (`deepen 1`) fetch with the whole tree
 * even when one file changed. Adding it cut a one-file fetch from ~3 MB to
 * ~1 kB in bench/git-source.ts, but isomorphic-git 1.44's pack indexer then
 * looped until out of memory on a thin pack for a revision whose content came
 * back to an earlier one (found by test/e2e/alerts.test.ts under load).
 * `requestThinPack` and `advertisedCapabilities` stay for the benchmark's
 * what-if and for the day the indexer handles it.
 *
 * The fix: when a remote's HEAD names a branch that does not exist, `git
 * upload-pack` advertises no HEAD line, and isomorphic-git's fetch then fails
 * with "Could not find HEAD" even though we asked for a specific ref. We add a
 * HEAD line (pointing at the first advertised ref) to such advertisements; it
 * only feeds isomorphic-git's guess of the remote's default branch, which we
 * never use.
 */
import nodeHttp from 'isomorphic-git/http/node';
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';

export interface HttpCounters {
  requests: number;
  /** POSTs to git-upload-pack: pack negotiations and downloads. */
  packRequests: number;
  bytesIn: number;
}

async function collect(body: AsyncIterableIterator<Uint8Array> | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  if (body) for await (const c of body) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

function pktLine(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from((b.length + 4).toString(16).padStart(4, '0'), 'ascii'), b]);
}

/** Splits pkt-lines: a payload string, or null for a flush packet. Returns null if malformed. */
function parsePktLines(buf: Buffer): Array<string | null> | null {
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

/** The capabilities advertised on the first ref line of a v1 advertisement. */
export function advertisedCapabilities(advert: Buffer): Set<string> {
  const lines = parsePktLines(advert) ?? [];
  const first = lines.find((l, i) => l !== null && i > 0 && !l.startsWith('#'));
  const nul = first?.indexOf('\0') ?? -1;
  return new Set(
    nul >= 0
      ? first!
          .slice(nul + 1)
          .trim()
          .split(' ')
      : [],
  );
}

/** Adds `thin-pack` to the first `want` line of an upload-pack request. Exported for tests. */
export function requestThinPack(body: Buffer): Buffer {
  const len = Number.parseInt(body.subarray(0, 4).toString('ascii'), 16);
  if (Number.isNaN(len) || len < 4 || len > body.length) return body;
  const first = body.subarray(4, len).toString('latin1');
  if (!first.startsWith('want ') || first.includes(' thin-pack')) return body;
  const line = first.endsWith('\n') ? `${first.slice(0, -1)} thin-pack\n` : `${first} thin-pack`;
  return Buffer.concat([
    Buffer.from(`${(line.length + 4).toString(16).padStart(4, '0')}${line}`, 'latin1'),
    body.subarray(len),
  ]);
}

export function countingHttp(counters: HttpCounters): HttpClient {
  return {
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      counters.requests++;
      const isPack = req.method === 'POST' && req.url.endsWith('/git-upload-pack');
      if (isPack) counters.packRequests++;
      const res = await nodeHttp.request(req);
      const isAdvert = req.method === 'GET' && req.url.includes('/info/refs?service=git-upload-pack');
      if (isAdvert && res.statusCode === 200) {
        const buf = await collect(res.body);
        counters.bytesIn += buf.length;
        return { ...res, body: once(ensureHeadAdvertised(buf)) };
      }
      const body = res.body;
      async function* counted(): AsyncIterableIterator<Uint8Array> {
        if (!body) return;
        for await (const c of body) {
          counters.bytesIn += c.byteLength;
          yield c;
        }
      }
      return { ...res, body: counted() };
    },
  };
}
