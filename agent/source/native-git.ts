/**
 * Reading desired state with the native `git` binary (child_process.spawn,
 * never a shell), without a work tree.
 *
 * Remote (smart HTTP/S): the ref from one GET of info/refs with the engine's own
 * HTTP client (no git process, no pack); `git fetch --depth 1 --no-tags` of that one ref into a bare cache
 * repository in the state dir, only when the commit is missing (thin packs:
 * a one-file push downloads about one blob). Local repository: read in place
 * (`--git-dir`). Either way a revision is read with ONE `git cat-file --batch`
 * process, asked as it answers: the tree objects under source.path (walked
 * folder by folder, a level's trees asked for together), then the manifest
 * blobs. After a revision was read, ONE `git diff-tree -r` against it lists
 * only what changed, and cat-file reads those blobs.
 *
 * Fail closed (SPEC §9), the same rules and errors as the isomorphic engine:
 *
 * - git never talks to the source itself. It talks plain HTTP to a loopback
 *   relay that lives for one git command and sends every request on through
 *   the SAME client as the isomorphic engine (./http-client.ts). So the
 *   credentials never reach git at all — not its argv, not its environment,
 *   not a file, not an askpass helper — and are added only to requests for
 *   source.url's origin; redirects are followed only within that origin
 *   (SOURCE_REDIRECT_REFUSED otherwise, https→http included); the
 *   advertisement and the pack are bounded (SOURCE_TOO_LARGE: the connection
 *   is dropped, so neither git nor we read past the limit); response and idle
 *   timeouts apply; `counters` count what went over the wire. Chosen over a
 *   GIT_ASKPASS helper because it needs no secret in any process but this
 *   one, and because git's own redirect and size handling (curl follows
 *   redirects with the credentials it was given, and has no response size
 *   limit that git exposes) cannot express these rules.
 * - Only git's relay may use the relay: each command gets a fresh random
 *   token that git sends as a header (`http.extraHeader`, passed through
 *   GIT_CONFIG_COUNT in that child's own environment, readable only by this
 *   user, never in argv); a request without it is answered 403 and not sent
 *   on. The relay listens on 127.0.0.1 only and is closed when the command
 *   ends.
 * - No configuration, hooks or credential helpers of the machine, the user or
 *   the repository run: the environment is built from scratch (PATH only,
 *   HOME and XDG_CONFIG_HOME below /dev/null (GIT_HOME), GIT_CONFIG_NOSYSTEM,
 *   GIT_CONFIG_GLOBAL=/dev/null, GIT_TERMINAL_PROMPT=0, no askpass, no proxy
 *   variables), and every command runs with `-c core.hooksPath=/dev/null
 *   -c credential.helper= -c protocol.allow=never -c protocol.http.allow=always
 *   -c http.followRedirects=false -c gc.auto=0 -c maintenance.auto=false`
 *   (nothing is left running in the background) and http.lowSpeedLimit/Time.
 * - What we read is bounded: the ref list by the advertisement limit, each
 *   blob by the 1 MiB manifest limit (known from cat-file's header: a larger
 *   one is a problem, streamed past and never kept), the trees listed to
 *   512 MiB in all, stderr to its last 64 KiB. A process past its limit is
 *   killed.
 * - Messages never show the relay's URL or token, only source.url as
 *   displayUrl shows it; secrets are redacted.
 *
 * A remote source needs git ≥ 2.31 (GIT_CONFIG_COUNT); a local repository any git (`cat-file --batch`,
 * `rev-parse`; `diff-tree --end-of-options`, 2.24, only to list a change, else the whole tree is listed).
 * `createGitEngine('auto')` falls back to isomorphic-git otherwise.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
// biome-ignore lint/style/noRestrictedImports: types only, erased at build
import type * as http from 'node:http';
import { nodeHttp } from '../../core/builtins.js';
// biome-ignore lint/style/noRestrictedImports: types only, erased at build
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { GitHttpResponse, HttpClient } from 'isomorphic-git';
import { errorMessage, StewardError } from '../../core/errors.js';
import { isManifestPath } from '../manifest.js';
import {
  addManifest,
  cachePath,
  type GitEngine,
  type GitSourceOptions,
  localGitdir,
  MAX_COMMIT_BYTES,
  MAX_MANIFEST_BYTES,
  missingPath,
  type KnownBlob,
  type ReadResult,
  refNotFound,
  skipKnown,
  sourceUnreachable,
  tooLargeMessage,
} from './git.js';
import { looseCommit, refCandidates } from './refs.js';
import {
  DEFAULT_HTTP_LIMITS,
  displayUrl,
  gitHttpClient,
  type HttpCounters,
  parsePktLines,
} from './http-client.js';
import { nodeCrypto } from '../../core/builtins.js';

export const NATIVE_GIT_MIN = { major: 2, minor: 31 } as const;

/**
 * The cache is pruned after this many fetches: one `repack -a -d` and `prune --expire=now`, which keep what
 * the refs reach (the fetched candidate, refs/steward/…, and the accepted revision, refs/steward-keep/accepted)
 * and drop every older revision's objects. Without it every push leaves its objects in the state dir for good.
 */
export const PRUNE_EVERY_FETCHES = 8;
const ACCEPTED_REF = 'refs/steward-keep/accepted';
/** Where the cache keeps its copy of the source's ref. */
const cacheRef = (fullRef: string): string => `refs/steward/${fullRef.replace(/^refs\//, '')}`;

const MAX_STDERR_BYTES = 64 * 1024;
/** A SHA-1 or SHA-256 object id: what a ref may resolve to before it is used in an argument. */
const OBJECT_ID = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;
const TOKEN_HEADER = 'x-steward-relay';
/** Largest request body git may send through the relay (its wants and haves). */
const MAX_REQUEST_BYTES = 64 * 1024 * 1024;
/** Request headers from git that are passed on; everything else (the token included) stays here. */
const PASSED_REQUEST_HEADERS = ['content-type', 'accept', 'content-encoding'];
const PASSED_RESPONSE_HEADERS = ['content-type', 'cache-control', 'expires', 'pragma'];

/**
 * HOME and XDG_CONFIG_HOME for git. Every file git looks for there ($HOME/.gitconfig, $XDG_CONFIG_HOME/git/config,
 * attributes, ignore) is then below a character device, where nothing can ever be created; git takes ENOTDIR for
 * a missing file and says nothing. Not a temporary directory: there is nothing to remove at exit, so an agent that
 * is killed (SIGKILL, the OOM killer, a crash) leaves nothing behind in TMPDIR.
 */
export const GIT_HOME = '/dev/null';

function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: GIT_HOME,
    XDG_CONFIG_HOME: GIT_HOME,
    LC_ALL: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '',
    SSH_ASKPASS: '',
    GIT_LITERAL_PATHSPECS: '1',
    ...extra,
  };
}

interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

interface RunOptions {
  env?: Record<string, string>;
  /** Largest stdout kept; past it the process is killed and `tooLarge` thrown. */
  maxStdout: number;
  tooLarge: () => StewardError;
  input?: string;
  /** Writes stdin itself, and ends it, instead of `input`: a conversation (cat-file asked as it answers). */
  feed?: (stdin: NodeJS.WritableStream) => void;
  /** Streams stdout instead of collecting it (then maxStdout does not apply). */
  onStdout?: (chunk: Buffer) => void;
}

/** Runs git (never through a shell) with the hardening every command gets. */
function runGit(args: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', [...HARDENING, ...args], {
      env: baseEnv(opts.env),
      stdio: ['pipe', 'pipe', 'pipe'],
      shell: false,
    });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    let failure: Error | undefined;
    const fail = (e: Error): void => {
      failure ??= e;
      child.kill('SIGKILL');
    };
    child.stdout.on('data', (c: Buffer) => {
      if (opts.onStdout) {
        try {
          opts.onStdout(c);
        } catch (e) {
          fail(e as Error);
        }
        return;
      }
      outBytes += c.length;
      if (outBytes > opts.maxStdout) fail(opts.tooLarge());
      else out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      err = (err + c.toString('utf8')).slice(-MAX_STDERR_BYTES);
    });
    child.stdin.on('error', () => {}); // a process that exits early closes its stdin: its exit code says why
    child.on('error', (e) => {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      failure ??= missing
        ? new StewardError(
            'SOURCE_UNREACHABLE',
            'the native Git engine needs a `git` binary on the PATH; install git or use the isomorphic engine',
          )
        : e;
    });
    child.on('close', (code) => {
      if (failure) reject(failure);
      else resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    if (opts.feed) opts.feed(child.stdin);
    else child.stdin.end(opts.input ?? '');
  });
}

const HARDENING = [
  '-c',
  'core.hooksPath=/dev/null',
  '-c',
  'credential.helper=',
  '-c',
  'core.askPass=',
  '-c',
  'core.fsmonitor=false',
  '-c',
  'protocol.allow=never',
  '-c',
  'protocol.http.allow=always',
  '-c',
  'http.followRedirects=false',
  '-c',
  'gc.auto=0',
  '-c',
  'maintenance.auto=false',
  '-c',
  'fetch.writeCommitGraph=false',
  '-c',
  // v0: ls-remote is one GET of info/refs, like the isomorphic engine's (v2 adds an ls-refs POST).
  'protocol.version=0',
];

/** The last line of git's stderr that says what went wrong, without the "fatal:" prefix. */
function gitReason(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const last = [...lines].reverse().find((l) => /^(fatal|error):/.test(l)) ?? lines.at(-1) ?? 'git failed';
  return last.replace(/^(fatal|error):\s*/, '');
}

/** What the relay saw during one git command. */
export interface RelayLog {
  /** The first error of the HTTP client (a refused redirect, a size limit, a timeout, a refused connection). */
  error?: unknown;
  /** The last non-2xx status the source answered. */
  status?: number;
  statusMessage?: string;
}

/**
 * A loopback HTTP relay from git to the source through the engine's own HTTP
 * client, for one git command: `fn` gets the URL to give git and the
 * environment that carries the relay's token. Exported for tests.
 */
export async function withRelay<T>(
  client: HttpClient,
  upstream: string,
  fn: (url: string, env: Record<string, string>, log: RelayLog) => Promise<T>,
): Promise<T> {
  const token = nodeCrypto().randomBytes(32).toString('hex');
  const want = Buffer.from(token);
  const log: RelayLog = {};
  const base = upstream.replace(/\/+$/, '');
  const server = nodeHttp().createServer((req, res) => {
    void relay(req, res).catch((e) => {
      log.error ??= e;
      res.destroy();
    });
  });
  const relay = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const got = Buffer.from(String(req.headers[TOKEN_HEADER] ?? ''));
    if (
      got.length !== want.length ||
      !nodeCrypto().timingSafeEqual(got, want) ||
      !req.url?.startsWith('/r/')
    ) {
      res.writeHead(403).end();
      return;
    }
    const chunks: Buffer[] = [];
    let bodyBytes = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      bodyBytes += c.length;
      if (bodyBytes > MAX_REQUEST_BYTES) {
        res.writeHead(413).end();
        return;
      }
      chunks.push(c);
    }
    const headers: Record<string, string> = { 'user-agent': 'steward' };
    for (const h of PASSED_REQUEST_HEADERS) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const method = req.method ?? 'GET';
    let answer: GitHttpResponse;
    try {
      answer = await client.request({
        url: `${base}/${req.url.slice(3)}`,
        method,
        headers,
        ...(method === 'POST' ? { body: single(Buffer.concat(chunks)) } : {}),
      });
    } catch (e) {
      log.error ??= e;
      res.writeHead(502).end();
      return;
    }
    if (answer.statusCode < 200 || answer.statusCode >= 300) {
      log.status = answer.statusCode;
      log.statusMessage = answer.statusMessage;
    }
    const out: Record<string, string> = {};
    for (const h of PASSED_RESPONSE_HEADERS) {
      const v = answer.headers?.[h];
      if (typeof v === 'string') out[h] = v;
    }
    res.writeHead(answer.statusCode, answer.statusMessage, out);
    try {
      if (answer.body) for await (const c of answer.body) if (!res.write(c)) await once(res, 'drain');
    } catch (e) {
      log.error ??= e;
      res.destroy();
      return;
    }
    res.end();
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const env = {
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'http.extraHeader',
    GIT_CONFIG_VALUE_0: `${TOKEN_HEADER}: ${token}`,
  };
  try {
    return await fn(`http://127.0.0.1:${port}/r`, env, log);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

async function* single(b: Buffer): AsyncIterableIterator<Uint8Array> {
  yield b;
}

function once(emitter: http.ServerResponse, event: string): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      emitter.off(event, done);
      emitter.off('close', done);
      resolve();
    };
    emitter.on(event, done);
    emitter.on('close', done);
  });
}

/**
 * `git cat-file --batch` output, object by object: a header line ("<oid> <type> <size>", or "<name> missing"),
 * then the object's bytes and a newline. `header` says, per line, how many bytes to keep as the object's
 * content, or to stream past unkept, or that none follow.
 */
abstract class BatchStream {
  private buf: Buffer = Buffer.alloc(0);
  /** Bytes of the object being read (-1: awaiting a header). */
  private size = -1;
  /** Bytes (and the newline) still to stream past. */
  private skip = 0;

  protected abstract header(line: string): { keep: number } | { pass: number } | null;
  protected abstract content(bytes: Buffer): void;
  /** An object streamed past has gone by. */
  protected passed(): void {}

  /** Between objects: nothing half read. */
  protected get idle(): boolean {
    return this.size < 0 && this.skip === 0;
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, this.buf.length);
        this.skip -= n;
        this.buf = this.buf.subarray(n);
        if (this.skip > 0) return;
        this.passed();
      }
      if (this.size < 0) {
        const nl = this.buf.indexOf(10);
        if (nl < 0) {
          if (this.buf.length > 256) throw new Error('git cat-file sent an overlong header');
          return;
        }
        const line = this.buf.subarray(0, nl).toString('utf8');
        this.buf = this.buf.subarray(nl + 1);
        const next = this.header(line);
        if (next === null) continue;
        if ('pass' in next) {
          this.skip = next.pass + 1;
          continue;
        }
        this.size = next.keep;
      }
      if (this.buf.length < this.size + 1) return;
      const bytes = Buffer.from(this.buf.subarray(0, this.size));
      this.buf = this.buf.subarray(this.size + 1);
      this.size = -1;
      this.content(bytes);
    }
  }
}

/** Reads the blobs it was given, in order, from `git cat-file --batch`. */
class BatchReader extends BatchStream {
  private next = 0;

  constructor(
    private readonly expected: ReadonlyArray<{ path: string; oid: string; size: number }>,
    private readonly onBlob: (path: string, blob: Buffer, oid: string) => void,
    /** A blob larger than MAX_MANIFEST_BYTES: skipped, never kept; without this, an error. */
    private readonly onTooLarge?: (path: string, size: number) => void,
  ) {
    super();
  }

  get done(): boolean {
    return this.next === this.expected.length && this.idle;
  }

  protected header(line: string): { keep: number } | { pass: number } {
    const m = /^([0-9a-f]+) blob (\d+)$/.exec(line);
    const want = this.expected[this.next];
    if (!m || !want || m[1] !== want.oid) throw new Error(`git cat-file answered "${line.slice(0, 80)}"`);
    const size = Number(m[2]);
    if (size <= MAX_MANIFEST_BYTES) return { keep: size };
    if (!this.onTooLarge || want.size >= 0) throw new Error(`git cat-file announced a ${size}-byte blob`);
    this.onTooLarge(want.path, size);
    this.next++;
    return { pass: size };
  }

  protected content(blob: Buffer): void {
    const want = this.expected[this.next++];
    if (want) this.onBlob(want.path, blob, want.oid);
  }
}

/**
 * Reads tree objects from `git cat-file --batch` as they are asked for: each request's answer is its
 * content, or null when the object is missing or not a tree (its bytes are streamed past). At most
 * `maxBytes` of trees in all, as `ls-tree -r` was bounded.
 */
class TreeReader extends BatchStream {
  private total = 0;
  private readonly waiting: Array<(tree: Buffer | null) => void> = [];

  constructor(
    private readonly maxBytes: number,
    private readonly tooLarge: () => Error,
  ) {
    super();
  }

  /** The answer to the next request written to cat-file. */
  next(): Promise<Buffer | null> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  protected header(line: string): { keep: number } | { pass: number } | null {
    if (/^\S+ missing$/.test(line)) {
      this.answer(null);
      return null;
    }
    const m = /^[0-9a-f]+ (tree|blob|commit|tag) (\d+)$/.exec(line);
    if (!m) throw new Error(`git cat-file answered "${line.slice(0, 80)}"`);
    const size = Number(m[2]);
    if (m[1] !== 'tree') return { pass: size };
    this.total += size;
    if (this.total > this.maxBytes) throw this.tooLarge();
    return { keep: size };
  }

  protected override passed(): void {
    this.answer(null);
  }

  protected content(tree: Buffer): void {
    this.answer(tree);
  }

  private answer(tree: Buffer | null): void {
    const w = this.waiting.shift();
    if (!w) throw new Error('git cat-file answered a request it was not sent');
    w(tree);
  }
}

/**
 * What a tree entry's mode makes it, as git reads a mode (object_type: the file-type bits), so that a mode
 * written zero-padded ("040000", which old tools wrote and `git fsck` only warns about) or as a legacy
 * "100664" is what `ls-tree` calls it, not skipped.
 */
export function entryType(mode: string): 'tree' | 'commit' | 'blob' {
  const bits = Number.parseInt(mode, 8) & 0o170000;
  return bits === 0o040000 ? 'tree' : bits === 0o160000 ? 'commit' : 'blob';
}

/** A running `git cat-file --batch`, asked as it answers (NativeGitEngine.catFile). */
interface CatFileSession {
  /** Where its output goes from now on: the tree reader while listing, then the blob reader. */
  read(reader: { push(c: Buffer): void }): void;
  /** Writes request lines (object ids). */
  ask(lines: string): void;
  /** Writes the last request lines and closes its input (once; later calls do nothing). */
  end(lines: string): void;
  /** Its exit. */
  done: Promise<RunResult>;
}

/** One entry of a tree object: "<mode> <name>\0<id bytes>". */
interface TreeEntry {
  mode: string;
  name: string;
  oid: string;
}

/** The entries of a tree object, in its order; `idBytes` is 20 (SHA-1) or 32 (SHA-256). */
export function parseTree(tree: Buffer, idBytes: number): TreeEntry[] {
  const out: TreeEntry[] = [];
  let at = 0;
  while (at < tree.length) {
    const sp = tree.indexOf(32, at);
    const nul = sp < 0 ? -1 : tree.indexOf(0, sp + 1);
    if (sp < 0 || nul < 0 || nul + 1 + idBytes > tree.length)
      throw new Error('git cat-file sent a malformed tree');
    out.push({
      mode: tree.toString('latin1', at, sp),
      name: tree.toString('utf8', sp + 1, nul),
      oid: tree.toString('hex', nul + 1, nul + 1 + idBytes),
    });
    at = nul + 1 + idBytes;
  }
  return out;
}

/**
 * The refs of a smart HTTP (v0/v1) upload-pack advertisement: name → id ("<name>^{}" for a peeled tag), or
 * null when the body is not one. Exported for tests.
 */
export function parseAdvertisement(buf: Buffer): Map<string, string> | null {
  const lines = parsePktLines(buf);
  if (!lines) return null;
  if (lines[0] !== '# service=git-upload-pack\n' || lines[1] !== null) return null;
  const refs = new Map<string, string>();
  for (const line of lines.slice(2)) {
    if (line === null) break;
    if (line.startsWith('version ')) continue; // "version 1"
    const [head] = line.split('\0');
    const m = /^([0-9a-f]{40}(?:[0-9a-f]{24})?) (\S+)$/.exec(head!.replace(/\n$/, ''));
    if (!m) return null;
    if (m[2] !== 'capabilities^{}') refs.set(m[2]!, m[1]!);
  }
  return refs;
}

export class NativeGitEngine implements GitEngine {
  readonly counters: HttpCounters = { requests: 0, packRequests: 0, bytesIn: 0 };
  /** Git processes spawned, and tree entries listed (every entry but a folder's, or diff-tree lines): counted in tests. */
  readonly stats = { processes: 0, listed: 0 };
  /** The last revision read: its manifest blobs (path → id, size; -1 unknown), so the next one lists only what changed. */
  private listing: { sha: string; dir: string; blobs: Map<string, { oid: string; size: number }> } | null =
    null;
  private readonly client: HttpClient | null;
  private readonly lowSpeedTime: string;
  private gitdir: string | null = null;
  private fetches = 0;
  /**
   * The advertisement resolve() just read, handed to the next fetch's relay in place of a second GET of
   * info/refs (one round trip less per push; git then fetches exactly the commit resolve named). Used once.
   */
  private advert: (GitHttpResponse & { body: undefined; bytes: Buffer }) | null = null;
  /** The revision in force (DesiredStateSource.retain): kept through pruning. */
  private accepted: string | null = null;

  constructor(private readonly opts: GitSourceOptions) {
    const limits = { ...DEFAULT_HTTP_LIMITS, ...opts.http };
    // The relay's client times the source out precisely; git's own low-speed
    // limit (whole seconds) is a backstop behind it.
    this.lowSpeedTime = String(
      Math.ceil(Math.max(limits.responseTimeoutMs, limits.idleTimeoutMs) / 1000) + 5,
    );
    this.client =
      opts.kind === 'http'
        ? gitHttpClient({ url: opts.url, auth: opts.auth, counters: this.counters, limits: opts.http ?? {} })
        : null;
  }

  private git(args: string[], opts: RunOptions): Promise<RunResult> {
    this.stats.processes++;
    return runGit(args, opts);
  }

  private get shownUrl(): string {
    return this.opts.kind === 'http' ? displayUrl(this.opts.url) : this.opts.url;
  }

  private failed(what: string, r: { stderr: string } | null, log: RelayLog | null): StewardError {
    if (log?.error instanceof StewardError) return log.error;
    const secret = this.opts.auth?.password;
    if (log?.error) return sourceUnreachable(what, this.shownUrl, errorMessage(log.error), undefined, secret);
    if (log?.status)
      return sourceUnreachable(
        what,
        this.shownUrl,
        `HTTP Error: ${log.status} ${log.statusMessage ?? ''}`.trimEnd(),
        log.status,
        secret,
      );
    const reason = gitReason(r?.stderr ?? '').replace(
      /https?:\/\/127\.0\.0\.1:\d+\/r\/?/g,
      `${this.shownUrl}/`,
    );
    return sourceUnreachable(what, this.shownUrl, reason, undefined, secret);
  }

  private remote<T>(
    fn: (url: string, env: Record<string, string>, log: RelayLog) => Promise<T>,
    advert: NativeGitEngine['advert'] = null,
  ): Promise<T> {
    const client = this.client;
    if (!client) throw new StewardError('SOURCE_UNREACHABLE', 'a local source has no HTTP client');
    const relayed: HttpClient = advert
      ? {
          request: async (req) => {
            if ((req.method ?? 'GET') !== 'GET' || !/\/info\/refs\?service=git-upload-pack$/.test(req.url))
              return client.request(req);
            return { ...advert, body: single(advert.bytes) };
          },
        }
      : client;
    return withRelay(relayed, this.opts.url, (url, env, log) =>
      fn(url, { ...env, GIT_HTTP_LOW_SPEED_LIMIT: '1', GIT_HTTP_LOW_SPEED_TIME: this.lowSpeedTime }, log),
    );
  }

  private async cacheGitdir(): Promise<string> {
    if (this.gitdir) return this.gitdir;
    const dir = cachePath(this.opts.cacheDir, this.opts.url, 'native-');
    if (!fs.existsSync(join(dir, 'HEAD'))) {
      await fs.promises.mkdir(dir, { recursive: true });
      // --template= : no sample hooks or info files in the cache.
      const r = await this.local(['init', '--quiet', '--bare', '--template=', dir]);
      if (r.code !== 0) throw this.failed('creating the Git cache for', r, null);
    }
    this.gitdir = dir;
    return dir;
  }

  private gitdirFor(): Promise<string> | string {
    if (this.opts.kind === 'local') {
      this.gitdir ??= localGitdir(this.opts.url);
      return this.gitdir;
    }
    return this.cacheGitdir();
  }

  /** A git command on a local directory (no network), its output bounded. */
  private local(args: string[], maxStdout = 64 * 1024): Promise<RunResult> {
    return this.git(args, {
      maxStdout,
      tooLarge: () =>
        new StewardError('SOURCE_TOO_LARGE', `git ${args[0]} printed more than ${maxStdout} bytes`),
    });
  }

  private async hasCommit(gitdir: string, sha: string): Promise<boolean> {
    const r = await this.local(['--git-dir', gitdir, 'cat-file', '-e', `${sha}^{commit}`]);
    return r.code === 0;
  }

  async resolve(): Promise<{ sha: string; fullRef: string }> {
    const candidates = refCandidates(this.opts.ref);
    if (this.opts.kind === 'local') {
      const gitdir = await this.gitdirFor();
      for (const ref of candidates) {
        // A loose commit is read directly: one git process less per plan (the answer is rev-parse's).
        const loose = looseCommit(gitdir, ref);
        if (loose) return { sha: loose, fullRef: ref };
        const r = await this.local([
          '--git-dir',
          gitdir,
          'rev-parse',
          '--verify',
          '--quiet',
          `${ref}^{commit}`,
        ]);
        const sha = r.stdout.toString('utf8').trim();
        if (r.code === 0 && OBJECT_ID.test(sha)) return { sha, fullRef: ref };
      }
      throw refNotFound(this.opts.ref, `in ${this.opts.url}`);
    }
    await this.cacheGitdir(); // once: the cache is needed to fetch, and without git a poll says so at once
    const refs = await this.advertisedRefs();
    for (const ref of candidates) {
      const sha = refs.get(`${ref}^{}`) ?? refs.get(ref);
      if (sha && OBJECT_ID.test(sha)) return { sha, fullRef: ref };
    }
    throw refNotFound(this.opts.ref, `at ${this.shownUrl}`);
  }

  /**
   * The source's refs from one GET of info/refs through the engine's HTTP client (as the isomorphic engine
   * reads them): no git process and no relay per poll. Bounded by the client's advertisement limit.
   */
  private async advertisedRefs(): Promise<Map<string, string>> {
    if (!this.client) throw new StewardError('SOURCE_UNREACHABLE', 'a local source has no HTTP client');
    const log: RelayLog = {};
    let body: Buffer;
    try {
      const res = await this.client.request({
        url: `${this.opts.url.replace(/\/+$/, '')}/info/refs?service=git-upload-pack`,
        method: 'GET',
        headers: { 'user-agent': 'steward', accept: 'application/x-git-upload-pack-advertisement' },
      });
      const chunks: Uint8Array[] = [];
      if (res.body) for await (const c of res.body) chunks.push(c);
      body = Buffer.concat(chunks);
      this.advert = res.statusCode === 200 ? { ...res, body: undefined, bytes: body } : null;
      if (res.statusCode < 200 || res.statusCode >= 300) {
        log.status = res.statusCode;
        log.statusMessage = res.statusMessage;
      }
    } catch (e) {
      log.error = e;
    }
    if (log.error || log.status) throw this.failed('asking for refs of', null, log);
    const refs = parseAdvertisement(body!);
    if (!refs)
      throw this.failed(
        'asking for refs of',
        {
          stderr: 'the server did not answer as a smart HTTP Git server (info/refs?service=git-upload-pack)',
        },
        null,
      );
    return refs;
  }

  async ensure(sha: string, fullRef: string): Promise<void> {
    if (this.opts.kind === 'local') return;
    const gitdir = await this.cacheGitdir();
    // A new push (the common case) names a commit the cache's ref does not: fetch at once, without first
    // asking git whether the commit is there (a process each way; the ref file is read directly).
    if (this.cachedRef(gitdir, fullRef) === sha && (await this.hasCommit(gitdir, sha))) return;
    const advert = this.advert;
    this.advert = null;
    await this.fetchRef(gitdir, fullRef, ['--depth', '1'], 'fetching', advert);
    if (++this.fetches % PRUNE_EVERY_FETCHES === 0) await this.prune(gitdir);
    // The fetch just wrote the ref after the objects: the ref naming `sha` says the commit is here.
    if (this.cachedRef(gitdir, fullRef) !== sha && !(await this.hasCommit(gitdir, sha)))
      throw new StewardError(
        'SOURCE_UNREACHABLE',
        `fetched ${fullRef} from ${this.shownUrl} but commit ${sha} is not in it (the ref moved); will retry`,
      );
  }

  /** Keeps `sha` (the revision in force) in the cache through pruning, whatever the branch does next. */
  async retain(sha: string): Promise<void> {
    if (OBJECT_ID.test(sha)) this.accepted = sha; // written as a ref right before a prune: no process per accept
  }

  /** Best effort: a failed prune leaves the cache as it was (git replaces packs only once the new one is whole). */
  private async prune(gitdir: string): Promise<void> {
    if (this.accepted) {
      const keep = await this.local([
        '--git-dir',
        gitdir,
        'update-ref',
        '--no-deref',
        ACCEPTED_REF,
        this.accepted,
      ]);
      if (keep.code !== 0) return; // never prune what the revision in force needs
    }
    const repack = await this.local([
      '--git-dir',
      gitdir,
      'repack',
      '-a',
      '-d',
      '-q',
      '--no-write-bitmap-index',
    ]);
    if (repack.code === 0) await this.local(['--git-dir', gitdir, 'prune', '--expire=now']);
  }

  async readCommitObject(oid: string): Promise<Buffer | null> {
    if (!OBJECT_ID.test(oid)) return null;
    const gitdir = await this.gitdirFor();
    const r = await this.local(['--git-dir', gitdir, 'cat-file', 'commit', oid], MAX_COMMIT_BYTES);
    return r.code === 0 ? r.stdout : null;
  }

  async deepen(fullRef: string, by: number): Promise<void> {
    if (this.opts.kind === 'local') return;
    const gitdir = await this.cacheGitdir();
    await this.fetchRef(
      gitdir,
      fullRef,
      [`--deepen=${Math.max(1, Math.floor(by))}`],
      'fetching history from',
    );
  }

  /** What the cache's copy of `fullRef` names, from its loose ref file (git fetch writes one), or null. */
  private cachedRef(gitdir: string, fullRef: string): string | null {
    try {
      const sha = fs.readFileSync(join(gitdir, cacheRef(fullRef)), 'utf8').trim();
      return OBJECT_ID.test(sha) ? sha : null;
    } catch {
      return null;
    }
  }

  /** One `git fetch` of `fullRef` into the cache through the relay (`depth`: --depth 1 or --deepen=N). */
  private async fetchRef(
    gitdir: string,
    fullRef: string,
    depth: string[],
    what: string,
    advert: NativeGitEngine['advert'] = null,
  ): Promise<void> {
    const local = cacheRef(fullRef);
    await this.remote(async (url, env, log) => {
      const r = await this.git(
        [
          '--git-dir',
          gitdir,
          'fetch',
          '--quiet',
          ...depth,
          '--no-tags',
          '--no-write-fetch-head',
          '--no-recurse-submodules',
          '--',
          url,
          `+${fullRef}:${local}`,
        ],
        {
          env,
          maxStdout: 64 * 1024,
          tooLarge: () => new StewardError('SOURCE_TOO_LARGE', 'git fetch printed more than 64 KiB'),
        },
      );
      if (r.code !== 0 || log.error) throw this.failed(what, r, log);
    }, advert);
  }

  async readManifests(sha: string, known?: KnownBlob): Promise<ReadResult> {
    const gitdir = await this.gitdirFor();
    const dir = this.opts.path === '.' ? '' : this.opts.path.replace(/\/+$/, '');
    const out: ReadResult = { files: [], problems: [] };
    const prev = this.listing;
    // With a cache to skip from, list only what changed since the revision read before (proportional to
    // the push); without one, or when git cannot diff (the old revision was pruned), list the whole tree.
    const changed =
      known && prev && prev.dir === dir && prev.sha !== sha
        ? await this.changedSince(gitdir, prev, sha, dir)
        : null;
    // Started for a whole listing, or once a diff's listing leaves something to read.
    const session: { cat?: CatFileSession } = {};
    const cat = () => (session.cat ??= this.catFile(gitdir));
    try {
      const listed = changed ?? (await this.listTree(cat(), sha, dir));
      if ('missing' in listed) return listed.missing;
      const blobs: Array<{ path: string; oid: string; size: number }> = [];
      for (const [path, b] of listed.blobs) {
        if (b.size > MAX_MANIFEST_BYTES) out.problems.push({ file: path, message: tooLargeMessage(b.size) });
        else blobs.push({ path, oid: b.oid, size: b.size });
      }
      const toRead = skipKnown(blobs, out, known);
      // The listing gives no sizes: a blob that is too large is skipped unread (streamed past, never kept)
      // and is a problem.
      const reader = new BatchReader(
        toRead,
        (path, blob, oid) => addManifest(out, path, blob, oid),
        (path, size) => {
          out.problems.push({ file: path, message: tooLargeMessage(size) });
          const b = listed.blobs.get(path);
          if (b) b.size = size;
        },
      );
      if (toRead.length > 0 || session.cat) {
        const c = cat();
        c.read(reader);
        c.end(toRead.map((b) => `${b.oid}\n`).join(''));
        const r = await c.done;
        if (r.code !== 0 || !reader.done) throw this.failed('reading', r, null);
      }
      this.listing = { sha, dir, blobs: listed.blobs };
      return out;
    } finally {
      session.cat?.end('');
    }
  }

  /**
   * One `git cat-file --batch` for a whole read, asked as it answers: the trees to list, then the blobs
   * (issue 12: one process where `ls-tree -r` and a cat-file were two). Every request is an object id or
   * `<id>^{tree}`, never a path (source.path may hold any character but NUL, a newline included).
   */
  private catFile(gitdir: string): CatFileSession {
    let stdin: NodeJS.WritableStream | null = null;
    let sink: { push(c: Buffer): void } | null = null;
    let ended = false;
    const done = this.git(['--git-dir', gitdir, 'cat-file', '--batch'], {
      maxStdout: 0,
      tooLarge: () => new StewardError('SOURCE_TOO_LARGE', 'git cat-file printed too much'),
      feed: (s) => {
        stdin = s;
      },
      onStdout: (c) => {
        if (!sink) throw new Error('git cat-file printed before it was asked');
        sink.push(c);
      },
    });
    done.catch(() => {}); // awaited by whoever waits on it; a process that fails early must not be unhandled
    return {
      done,
      read: (reader) => {
        sink = reader;
      },
      ask: (lines) => {
        stdin?.write(lines);
      },
      end: (lines) => {
        if (ended) return;
        ended = true;
        stdin?.end(lines);
      },
    };
  }

  /**
   * Every manifest blob under `dir` at `sha`, in git's order (`ls-tree -r`'s: depth first, each tree in its
   * own order), read as tree objects through `cat`: down the folders of `dir` from the commit's root tree,
   * then every tree below it, one level at a time (a level's trees asked for together). Sizes are not in
   * trees: -1, the blob reader bounds them.
   */
  private async listTree(
    cat: CatFileSession,
    sha: string,
    dir: string,
  ): Promise<{ blobs: Map<string, { oid: string; size: number }> } | { missing: ReadResult }> {
    const trees = new TreeReader(
      512 * 1024 * 1024,
      () =>
        new StewardError(
          'SOURCE_TOO_LARGE',
          `the tree under source.path at ${sha.slice(0, 12)} is too large to list`,
        ),
    );
    cat.read(trees);
    const failed = cat.done.then((r) => {
      throw this.failed('reading', r.stderr ? r : { stderr: 'git cat-file ended before it answered' }, null);
    });
    failed.catch(() => {}); // raced below while the listing waits; once it is done, the process's end is no failure
    const ask = (ids: string[]): Promise<Array<Buffer | null>> => {
      const answers = Promise.all(ids.map(() => trees.next()));
      cat.ask(ids.map((id) => `${id}\n`).join(''));
      return Promise.race([answers, failed]);
    };
    const idBytes = sha.length === 64 ? 32 : 20;
    let [tree] = await ask([`${sha}^{tree}`]);
    if (!tree)
      throw this.failed(
        'reading',
        { stderr: `fatal: commit ${sha.slice(0, 12)} is not in the repository` },
        null,
      );
    for (const name of dir.split('/').filter(Boolean)) {
      const entry: TreeEntry | undefined = parseTree(tree, idBytes).find(
        (e) => e.name === name && entryType(e.mode) === 'tree',
      );
      [tree] = entry ? await ask([entry.oid]) : [null];
      if (!tree) return { missing: missingPath(dir, sha) };
    }
    // Each tree's entries in its order; a folder's entry holds its own once read.
    type Entry = { path: string; oid: string; sub?: Entry[] };
    const top: Entry[] = [];
    let level: Array<{ tree: Buffer; prefix: string; into: Entry[] }> = [{ tree, prefix: dir, into: top }];
    while (level.length > 0) {
      const next: Array<{ oid: string; prefix: string; into: Entry[] }> = [];
      for (const { tree: t, prefix, into } of level)
        for (const e of parseTree(t, idBytes)) {
          const path = prefix ? `${prefix}/${e.name}` : e.name;
          const type = entryType(e.mode);
          if (type === 'tree') {
            const sub: Entry[] = [];
            into.push({ path, oid: e.oid, sub });
            next.push({ oid: e.oid, prefix: path, into: sub });
            continue;
          }
          this.stats.listed++; // what ls-tree -r would have printed: every entry but a tree
          if (type === 'blob' && isManifestPath(path, '')) into.push({ path, oid: e.oid });
        }
      const got = next.length > 0 ? await ask(next.map((n) => n.oid)) : [];
      level = next.map((n, i) => {
        const t = got[i];
        if (!t)
          throw this.failed('reading', { stderr: `fatal: tree ${n.oid} under ${n.prefix} is missing` }, null);
        return { tree: t, prefix: n.prefix, into: n.into };
      });
    }
    const blobs = new Map<string, { oid: string; size: number }>();
    const flatten = (entries: Entry[]): void => {
      for (const e of entries) {
        if (e.sub) flatten(e.sub);
        else blobs.set(e.path, { oid: e.oid, size: -1 });
      }
    };
    flatten(top);
    return { blobs };
  }

  /**
   * `prev`'s listing updated by ONE `git diff-tree -r` from `prev.sha` to `sha` under `dir`, or null when git
   * cannot say (the old commit pruned, the folder gone, output not understood): then the caller lists it all.
   */
  private async changedSince(
    gitdir: string,
    prev: { sha: string; blobs: Map<string, { oid: string; size: number }> },
    sha: string,
    dir: string,
  ): Promise<{ blobs: Map<string, { oid: string; size: number }> } | null> {
    const tree = (c: string) => (dir ? `${c}:${dir}` : `${c}^{tree}`);
    const r = await this.git(
      [
        '--git-dir',
        gitdir,
        'diff-tree',
        '-r',
        '-z',
        '--raw',
        '--no-renames',
        '--end-of-options',
        tree(prev.sha),
        tree(sha),
      ],
      {
        maxStdout: 512 * 1024 * 1024,
        tooLarge: () =>
          new StewardError(
            'SOURCE_TOO_LARGE',
            `the change under source.path at ${sha.slice(0, 12)} is too large to list`,
          ),
      },
    );
    if (r.code !== 0) return null;
    // ":<old mode> <new mode> <old id> <new id> <status>" NUL "<path>" NUL, per changed blob (or submodule).
    const fields = r.stdout.toString('utf8').split('\0');
    if (fields.at(-1) === '') fields.pop();
    if (fields.length % 2 !== 0) return null;
    const blobs = new Map(prev.blobs);
    let added = false;
    for (let i = 0; i < fields.length; i += 2) {
      const m = /^:(\d{6}) (\d{6}) [0-9a-f]+ ([0-9a-f]+) ([ADMT])$/.exec(fields[i]!);
      if (!m) return null;
      this.stats.listed++;
      const p = dir ? `${dir}/${fields[i + 1]}` : fields[i + 1]!;
      const isBlob = entryType(m[2]!) === 'blob';
      if (m[4] === 'D' || !isBlob || !isManifestPath(p, '')) {
        blobs.delete(p);
        continue;
      }
      if (!OBJECT_ID.test(m[3]!)) return null;
      if (!blobs.has(p)) added = true;
      blobs.set(p, { oid: m[3]!, size: -1 });
    }
    // git lists a tree recursively in byte order of the full path: keep that order for additions.
    return {
      blobs: added
        ? new Map([...blobs].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b))))
        : blobs,
    };
  }
}
