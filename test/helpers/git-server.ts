/**
 * Test helper: a real Git smart-HTTP server for end-to-end tests.
 *
 * A node:http server on 127.0.0.1 bridges every request to the real `git http-backend`
 * CGI (one child process per request). It records each request, can require HTTP Basic
 * auth, and can be told to fail every request to simulate a broken remote.
 *
 * The `Git-Protocol` request header is deliberately NOT forwarded, so the server speaks
 * protocol v0/v1 only (as isomorphic-git does): a ref listing is a single
 * `GET info/refs` and every upload-pack POST is a pack negotiation/download.
 */
import { type ChildProcess, type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isolatedGitEnv } from './git-repo.js';

export interface GitRequest {
  method: string;
  /** URL path, e.g. `/desired.git/info/refs`. */
  path: string;
  /** Query string without the leading `?` (empty when none). */
  query: string;
  /** `service` query parameter, else `git-upload-pack`/`git-receive-pack` from the path, else null. */
  service: string | null;
  /** Final HTTP status (0 while the response is still in flight). */
  status: number;
  /** Response body bytes sent so far (headers excluded). */
  bytesOut: number;
  /** True when no auth is configured or the request carried the right credentials. */
  authorized: boolean;
  /** True when the request carried any `Authorization` header (right, wrong or unasked for). */
  hadAuthorization: boolean;
}

/** Where to send a request instead of answering it: a 3xx status and a `Location`. */
export type RedirectRule = (r: GitRequest) => { status: number; location: string } | null;

/** Byte counts of fake, endless-looking responses (after the auth check). */
export interface HugeResponses {
  /** Answer `GET info/refs` with a well-formed v1 advertisement of this many bytes. */
  advertisement?: number;
  /** Answer upload-pack POSTs with `NAK` and side-band pack data of this many bytes. */
  pack?: number;
  /** After the bytes, keep the response open without sending more (a stalled server). */
  stall?: boolean;
}

export interface GitServer {
  /** e.g. `http://127.0.0.1:PORT` */
  baseUrl: string;
  /** e.g. `http://127.0.0.1:PORT/desired.git` */
  repoUrl(name: string): string;
  /** Every request, in arrival order. */
  requests: GitRequest[];
  clearRequests(): void;
  /** Count of upload-pack POSTs (pack negotiations/downloads) since last clear. */
  packRequests(): number;
  /** Make the server answer every request with this status (e.g. 503) until set back to null; simulates a dead/broken server. */
  failWith(status: number | null): void;
  /** Answer matching requests with a redirect (before the auth check) until set back to null. */
  redirect(rule: RedirectRule | null): void;
  /** Stream huge responses instead of asking `git http-backend`, until set back to null. */
  serveHuge(huge: HugeResponses | null): void;
  /** Accept requests and never answer them (no status line), until set back to false. */
  hang(on: boolean): void;
  stop(): Promise<void>;
}

export interface StartGitServerOptions {
  /** Directory holding the bare repositories (`<name>.git`). */
  projectRoot: string;
  /** When set, every request must carry these HTTP Basic credentials. */
  auth?: { username: string; password: string };
}

/** Mutable server state shared by the request handler and the GitServer methods. */
interface ServerState {
  projectRoot: string;
  auth: { username: string; password: string } | undefined;
  requests: GitRequest[];
  failStatus: number | null;
  redirect: RedirectRule | null;
  huge: HugeResponses | null;
  hang: boolean;
  children: Set<ChildProcess>;
}

/** Starts the server on a free port of 127.0.0.1. */
export async function startGitServer(opts: StartGitServerOptions): Promise<GitServer> {
  const state: ServerState = {
    projectRoot: opts.projectRoot,
    auth: opts.auth,
    requests: [],
    failStatus: null,
    redirect: null,
    huge: null,
    hang: false,
    children: new Set(),
  };
  const server = createServer((req, res) => handleRequest(state, req, res));
  const port = await listen(server);
  const baseUrl = `http://127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;
  return {
    baseUrl,
    repoUrl: (name) => `${baseUrl}/${name.endsWith('.git') ? name : `${name}.git`}`,
    requests: state.requests,
    clearRequests: () => {
      state.requests.length = 0;
    },
    packRequests: () => state.requests.filter(isUploadPackPost).length,
    failWith: (status) => {
      state.failStatus = status;
    },
    redirect: (rule) => {
      state.redirect = rule;
    },
    serveHuge: (huge) => {
      state.huge = huge;
    },
    hang: (on) => {
      state.hang = on;
    },
    stop: () => {
      stopped ??= stopServer(server, state);
      return stopped;
    },
  };
}

/** Listens on 127.0.0.1:0 and resolves to the chosen port. */
function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Kills running CGI children, drops every connection and waits for the server to close. */
function stopServer(server: Server, state: ServerState): Promise<void> {
  for (const child of state.children) child.kill('SIGKILL');
  state.children.clear();
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}

/** True for a POST to the upload-pack endpoint. */
function isUploadPackPost(r: GitRequest): boolean {
  return r.method === 'POST' && r.service === 'git-upload-pack';
}

/** Records the request, applies failure mode and auth, then bridges to the CGI. */
function handleRequest(state: ServerState, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = safeDecode(url.pathname);
  const record: GitRequest = {
    method: req.method ?? 'GET',
    path,
    query: url.search.replace(/^\?/, ''),
    service: serviceOf(url, path),
    status: 0,
    bytesOut: 0,
    authorized: isAuthorized(state.auth, req.headers.authorization),
    hadAuthorization: req.headers.authorization !== undefined,
  };
  state.requests.push(record);
  res.on('close', () => {
    record.status = res.statusCode;
  });
  req.on('error', () => res.destroy());
  if (state.hang) return;
  if (state.failStatus !== null) {
    sendText(res, record, state.failStatus, 'simulated failure\n');
    return;
  }
  const redirect = state.redirect?.(record);
  if (redirect) {
    res.setHeader('Location', redirect.location);
    sendText(res, record, redirect.status, 'moved\n');
    return;
  }
  if (!record.authorized) {
    res.setHeader('WWW-Authenticate', 'Basic realm="git"');
    sendText(res, record, 401, 'authentication required\n');
    return;
  }
  if (state.huge && serveHuge(state.huge, req, res, record)) return;
  runBackend(state, req, res, record);
}

const FAKE_SHA = 'f'.repeat(40);

/** A pkt-line: four hex digits of length, then the payload. */
function pkt(payload: Buffer | string): Buffer {
  const b = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  return Buffer.concat([Buffer.from((b.length + 4).toString(16).padStart(4, '0'), 'ascii'), b]);
}

/** Streams a huge advertisement or pack when asked for one; false when the request is neither. */
function serveHuge(
  huge: HugeResponses,
  req: IncomingMessage,
  res: ServerResponse,
  record: GitRequest,
): boolean {
  const isAdvert = record.method === 'GET' && record.path.endsWith('/info/refs');
  const isPack = record.method === 'POST' && record.service === 'git-upload-pack';
  const total = isAdvert ? huge.advertisement : isPack ? huge.pack : undefined;
  if (total === undefined) return false;
  const service = record.service ?? 'git-upload-pack';
  if (isPack) {
    // A stateless shallow fetch (native git) first sends its wants and `deepen` without
    // `done`, and reads only the shallow list; the request with `done` gets it again, then the pack.
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.length < 16 && body.push(c));
    req.on('end', () => {
      const text = Buffer.concat(body).toString('latin1');
      const shallow = Buffer.concat([pkt(`shallow ${FAKE_SHA}\n`), Buffer.from('0000', 'ascii')]);
      if (text.includes('deepen') && !text.includes('done\n')) {
        res.writeHead(200, {
          'Content-Type': `application/x-${service}-result`,
          'Cache-Control': 'no-cache',
        });
        res.end(shallow);
      } else {
        // isomorphic-git reads whatever follows the NAK; native git checks the shallow list and
        // that a pack starts: for it, the data is a pack of one endless blob.
        const native = text.includes('deepen') && !text.includes('isomorphic-git');
        streamHuge(huge, res, record, isAdvert, service, total, native ? shallow : null);
      }
    });
    return true;
  }
  req.resume(); // the request body is not needed
  streamHuge(huge, res, record, isAdvert, service, total);
  return true;
}

/**
 * The start of a well-formed pack: header (version 2, one object), a blob of
 * 1 GiB, the zlib header of its data; then STORED_BLOCKs (deflate blocks of raw
 * zeros) keep it well-formed as long as they come.
 */
const ENDLESS_BLOB_PACK = Buffer.concat([
  Buffer.from('PACK', 'ascii'),
  Buffer.from([0, 0, 0, 2, 0, 0, 0, 1]),
  // type 3 (blob), size 2^30 as git's varint: low 4 bits, then 7 bits a byte.
  Buffer.from([0b10110000, 0x80, 0x80, 0x80, 0x04]),
  Buffer.from([0x78, 0x01]),
]);
const STORED_BLOCK_LEN = 65000;
const STORED_BLOCK = Buffer.concat([
  Buffer.from([
    0x00,
    STORED_BLOCK_LEN & 0xff,
    STORED_BLOCK_LEN >> 8,
    ~STORED_BLOCK_LEN & 0xff,
    (~STORED_BLOCK_LEN >> 8) & 0xff,
  ]),
  Buffer.alloc(STORED_BLOCK_LEN),
]);

function streamHuge(
  huge: HugeResponses,
  res: ServerResponse,
  record: GitRequest,
  isAdvert: boolean,
  service: string,
  total: number,
  /** The shallow list a `deepen` request is answered with before the pack. */
  shallow: Buffer | null = null,
): void {
  res.writeHead(200, {
    'Content-Type': isAdvert ? `application/x-${service}-advertisement` : `application/x-${service}-result`,
    'Cache-Control': 'no-cache',
  });
  const head = isAdvert
    ? Buffer.concat([
        pkt(`# service=${service}\n`),
        Buffer.from('0000', 'ascii'),
        pkt(`${FAKE_SHA} refs/heads/main\0multi_ack side-band-64k shallow\n`),
      ])
    : shallow
      ? Buffer.concat([shallow, pkt('NAK\n'), pkt(Buffer.concat([Buffer.from([1]), ENDLESS_BLOB_PACK]))])
      : pkt('NAK\n');
  // One 64 KiB-ish block, reused: the server's own memory stays flat however much it sends.
  const unit = isAdvert
    ? pkt(`${FAKE_SHA} refs/heads/${'x'.repeat(16)}\n`)
    : shallow
      ? pkt(Buffer.concat([Buffer.from([1]), STORED_BLOCK]))
      : pkt(Buffer.concat([Buffer.from([1]), Buffer.alloc(65515)]));
  const block = Buffer.concat(
    Array.from({ length: Math.max(1, Math.floor(65536 / unit.length)) }, () => unit),
  );
  let sent = 0;
  const write = (chunk: Buffer): boolean => {
    sent += chunk.length;
    record.bytesOut += chunk.length;
    return res.write(chunk);
  };
  const pump = (): void => {
    while (!res.destroyed && sent < total) {
      if (!write(block)) {
        res.once('drain', pump);
        return;
      }
    }
    if (!res.destroyed && !huge.stall) res.end(Buffer.from('0000', 'ascii'));
  };
  write(head);
  pump();
}

/** Decodes a URL path, falling back to the raw text on malformed escapes. */
function safeDecode(pathname: string): string {
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

/** The git service a request addresses, if any. */
function serviceOf(url: URL, path: string): string | null {
  const fromQuery = url.searchParams.get('service');
  if (fromQuery !== null) return fromQuery;
  const match = /\/(git-upload-pack|git-receive-pack)$/.exec(path);
  return match?.[1] ?? null;
}

/** Checks an Authorization header against the configured Basic credentials. */
function isAuthorized(auth: ServerState['auth'], header: string | undefined): boolean {
  if (auth === undefined) return true;
  if (header === undefined) return false;
  const match = /^Basic\s+(\S+)$/i.exec(header.trim());
  if (!match?.[1]) return false;
  return Buffer.from(match[1], 'base64').toString('utf8') === `${auth.username}:${auth.password}`;
}

/** Sends a small text/plain response and counts its bytes. */
function sendText(res: ServerResponse, record: GitRequest, status: number, body: string): void {
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': buf.length });
  record.bytesOut += buf.length;
  res.end(buf);
}

/** Builds the CGI environment for `git http-backend`. */
function cgiEnv(state: ServerState, req: IncomingMessage, record: GitRequest): Record<string, string> {
  const env: Record<string, string> = {
    GIT_PROJECT_ROOT: state.projectRoot,
    GIT_HTTP_EXPORT_ALL: '1',
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'http.receivepack',
    GIT_CONFIG_VALUE_0: 'true',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    REQUEST_METHOD: record.method,
    PATH_INFO: record.path,
    QUERY_STRING: record.query,
    REMOTE_USER: state.auth?.username ?? 'anonymous',
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    CONTENT_TYPE: req.headers['content-type'] ?? '',
  };
  const length = req.headers['content-length'];
  if (length !== undefined) env['CONTENT_LENGTH'] = length;
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined) env['HTTP_CONTENT_ENCODING'] = encoding;
  return isolatedGitEnv(env);
}

/** Spawns `git http-backend`, pipes the request body in and the CGI response out. */
function runBackend(state: ServerState, req: IncomingMessage, res: ServerResponse, record: GitRequest): void {
  const child = spawn('git', ['http-backend'], {
    cwd: state.projectRoot,
    env: cgiEnv(state, req, record),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  state.children.add(child);
  const stderr: Buffer[] = [];
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  child.stdin.on('error', () => {
    // The CGI may exit without reading its input (e.g. 403/404); that is not our error.
  });
  const fail = (reason: string): void => {
    if (!res.headersSent) sendText(res, record, 500, `git http-backend failed: ${reason}\n`);
    else res.destroy();
  };
  child.on('error', (err) => fail(err.message));
  child.on('close', () => state.children.delete(child));
  res.on('close', () => {
    if (!res.writableFinished && child.exitCode === null) child.kill('SIGKILL');
  });
  req.pipe(child.stdin);
  forwardCgiOutput(child, res, record, () => Buffer.concat(stderr).toString('utf8').trim() || 'no output');
}

/** Parses the CGI header block from stdout, then streams the body with backpressure. */
function forwardCgiOutput(
  child: ChildProcessWithoutNullStreams,
  res: ServerResponse,
  record: GitRequest,
  stderrText: () => string,
): void {
  let head: Buffer | null = Buffer.alloc(0);
  const writeBody = (chunk: Buffer): void => {
    if (chunk.length === 0 || res.destroyed) return;
    record.bytesOut += chunk.length;
    if (!res.write(chunk)) {
      child.stdout.pause();
      res.once('drain', () => child.stdout.resume());
    }
  };
  child.stdout.on('data', (chunk: Buffer) => {
    if (head === null) {
      writeBody(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const split = findHeaderEnd(head);
    if (split === null) return;
    const { status, headers } = parseCgiHeaders(head.subarray(0, split.index).toString('latin1'));
    const rest = head.subarray(split.index + split.length);
    head = null;
    res.writeHead(status, headers);
    writeBody(rest);
  });
  child.stdout.on('end', () => {
    if (head !== null) {
      if (!res.headersSent) sendText(res, record, 500, `git http-backend failed: ${stderrText()}\n`);
      return;
    }
    res.end();
  });
}

/** Finds the blank line ending the CGI header block (`\r\n\r\n` or `\n\n`, whichever comes first). */
function findHeaderEnd(buf: Buffer): { index: number; length: number } | null {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  if (crlf === -1 && lf === -1) return null;
  if (lf === -1 || (crlf !== -1 && crlf < lf)) return { index: crlf, length: 4 };
  return { index: lf, length: 2 };
}

/** Parses CGI response headers; `Status:` becomes the HTTP status (default 200). */
function parseCgiHeaders(block: string): { status: number; headers: Record<string, string> } {
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of block.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') {
      const code = Number.parseInt(value, 10);
      if (Number.isInteger(code) && code >= 100 && code <= 999) status = code;
    } else {
      headers[name] = value;
    }
  }
  return { status, headers };
}
