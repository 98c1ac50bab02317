/**
 * Reading desired state from Git with isomorphic-git, without a work tree.
 *
 * Remote (smart HTTP/S): each poll asks for the remote ref first (one GET of
 * info/refs) and fetches — shallow, single branch — only when it moved.
 * Local repository: read in place (isomorphic-git cannot fetch from a path).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { HttpClient } from 'isomorphic-git';
import { errorMessage, StewardError } from '../../core/errors.js';
import { refCandidates } from './refs.js';
import type { ManifestFile } from '../manifest.js';
import { isManifestPath } from '../manifest.js';
import { displayUrl, gitHttpClient, type HttpCounters, type HttpLimits } from './http-client.js';
import { nodeCrypto } from '../../core/builtins.js';
import { importModule } from '../../core/dynamic-import.js';

export interface GitSourceOptions {
  url: string;
  kind: 'http' | 'local';
  ref: string;
  path: string;
  auth: { username: string; password: string } | null;
  /** Where a remote's objects are cached (inside the state dir). */
  cacheDir: string;
  /** Size limits and timeouts of the HTTP client (default: the constants in http-client.ts). */
  http?: Partial<HttpLimits>;
}

/** Files bigger than this are rejected as manifests (a guard against a pushed blob). */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

export interface ReadResult {
  files: ManifestFile[];
  /**
   * Manifests left unread because the caller already holds them parsed (`known` said so): path and blob id.
   * Absent or empty without `known`.
   */
  unchanged?: Array<{ file: string; oid: string }>;
  /** Problems that make the revision invalid regardless of YAML (missing folder, bad encoding, too large). */
  problems: Array<{ file: string; message: string }>;
}

/** What `DesiredStateSource` reads Git through; both engines implement it (see engine.ts). */
export interface GitEngine {
  /** HTTP requests, upload-pack POSTs and bytes read from the remote so far. */
  readonly counters: HttpCounters;
  /** The commit the configured ref points at now (remote: one info/refs request, no pack). */
  resolve(): Promise<{ sha: string; fullRef: string }>;
  /** Makes sure the commit is available locally (remote: a shallow fetch, only if missing). */
  ensure(sha: string, fullRef: string): Promise<void>;
  /**
   * Every manifest under source.path at the commit, and the problems that make it invalid. A blob that
   * `known(path, oid)` accepts is not read: it is listed in `unchanged` instead (the parsed-manifest cache).
   */
  readManifests(sha: string, known?: KnownBlob): Promise<ReadResult>;
  /** The raw bytes of a commit object (what its signature and oid are over), or null when it is not available (e.g. beyond a shallow edge). */
  readCommitObject(oid: string): Promise<Buffer | null>;
  /** Optional: keep `sha` (the revision just accepted) in the cache when older revisions are pruned. */
  retain?(sha: string): Promise<void>;
  /** Fetches `by` more commits of history behind the shallow edge of `fullRef` (a local source has all of it: no-op). */
  deepen(fullRef: string, by: number): Promise<void>;
}

/** Whether the caller already holds the manifest at `path` with blob id `oid` (parsed). */
export type KnownBlob = (path: string, oid: string) => boolean;

/** Splits listed blobs into those to read and those the caller knows (ReadResult.unchanged). Shared by both engines. */
export function skipKnown<B extends { path: string; oid: string }>(
  blobs: readonly B[],
  out: ReadResult,
  known: KnownBlob | undefined,
): B[] {
  if (!known) return [...blobs];
  const unchanged: Array<{ file: string; oid: string }> = [];
  const read = blobs.filter((b) => {
    if (!known(b.path, b.oid)) return true;
    unchanged.push({ file: b.path, oid: b.oid });
    return false;
  });
  out.unchanged = unchanged;
  return read;
}

/** Largest commit object read for verification (real ones are a few KiB; a signature at most 64 KiB). */
export const MAX_COMMIT_BYTES = 1024 * 1024;

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Redacts credentials from anything that might be logged. */
function redact(message: string, secret: string | undefined): string {
  return secret ? message.split(secret).join('***') : message;
}

/** Adds one blob to a ReadResult: a manifest if it is small enough and UTF-8, else a problem. Shared by both engines. */
export function addManifest(out: ReadResult, path: string, blob: Uint8Array, oid?: string): void {
  if (blob.byteLength > MAX_MANIFEST_BYTES) {
    out.problems.push({ file: path, message: tooLargeMessage(blob.byteLength) });
    return;
  }
  try {
    out.files.push(
      oid ? { file: path, text: decoder.decode(blob), oid } : { file: path, text: decoder.decode(blob) },
    );
  } catch {
    out.problems.push({ file: path, message: 'file is not valid UTF-8' });
  }
}

export function tooLargeMessage(bytes: number): string {
  return `file is ${bytes} bytes; manifests are limited to ${MAX_MANIFEST_BYTES}`;
}

/** The problem a revision without source.path has (never read as "manage nothing"). */
export function missingPath(dir: string, sha: string): ReadResult {
  return {
    files: [],
    problems: [{ file: dir || '.', message: `source.path "${dir}" does not exist at ${sha.slice(0, 12)}` }],
  };
}

/** A clear, secret-free SOURCE_UNREACHABLE, with a hint for the HTTP statuses a user can fix. Shared by both engines. */
export function sourceUnreachable(
  what: string,
  shownUrl: string,
  message: string,
  status: number | undefined,
  secret: string | undefined,
): StewardError {
  let hint = '';
  if (status === 401 || status === 403) hint = ' (authentication failed: check source.auth)';
  else if (status === 404) hint = ' (repository not found: check source.url)';
  return new StewardError(
    'SOURCE_UNREACHABLE',
    `${what} ${shownUrl} failed: ${redact(message, secret)}${hint}`,
    { status },
    { cause: undefined },
  );
}

/** The Git directory of a local source: its .git/, or the repository itself when bare. */
export function localGitdir(url: string): string {
  const dotGit = join(url, '.git');
  if (fs.existsSync(join(dotGit, 'HEAD'))) return dotGit;
  if (fs.existsSync(join(url, 'HEAD')) && fs.existsSync(join(url, 'objects'))) return url;
  throw new StewardError(
    'SOURCE_UNREACHABLE',
    `source.url ${url} is not a Git repository (no .git/ and not a bare repository)`,
  );
}

/** Where a remote's objects are cached for one engine (`prefix` keeps the engines' caches apart). */
export function cachePath(cacheDir: string, url: string, prefix = ''): string {
  return join(cacheDir, prefix + nodeCrypto().createHash('sha256').update(url).digest('hex').slice(0, 16));
}

export function refNotFound(ref: string, where: string): StewardError {
  return new StewardError('SOURCE_REF_NOT_FOUND', `ref "${ref}" not found ${where}; check source.ref`);
}

type IsomorphicGit = typeof import('isomorphic-git').default;
let isomorphicGit: Promise<IsomorphicGit> | undefined;

/**
 * isomorphic-git, imported on first use: the native engine (the default where a `git` binary exists) shares
 * this module's helpers and must not pay for loading it (≈ 90 ms of `steward plan`'s start-up).
 */
function loadIsomorphicGit(): Promise<IsomorphicGit> {
  isomorphicGit ??= importModule<typeof import('isomorphic-git')>('isomorphic-git').then((m) => m.default);
  return isomorphicGit;
}

/** The isomorphic engine prunes its cache after this many fetches (as the native engine does). */
export const ISOMORPHIC_PRUNE_EVERY_FETCHES = 8;

/** The object ids a v2 pack index lists (`.idx`: magic, version 2, fan-out of 256, then the sorted names). */
export function packIndexOids(idx: Buffer): string[] | null {
  if (idx.length < 8 + 256 * 4 || idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2)
    return null;
  const n = idx.readUInt32BE(8 + 255 * 4);
  const start = 8 + 256 * 4;
  if (idx.length < start + n * 20) return null;
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(idx.toString('hex', start + i * 20, start + (i + 1) * 20));
  return out;
}

/** The isomorphic-git engine (pure JavaScript: no `git` binary needed). */
export class GitRepository implements GitEngine {
  readonly counters: HttpCounters = { requests: 0, packRequests: 0, bytesIn: 0 };
  private readonly http: HttpClient | null;
  /** isomorphic-git's cache of parsed packs: replaced after a prune (it holds the packs it read). */
  private cache: object = {};
  private gitdir: string | null = null;
  private fetches = 0;
  /** The revision in force (DesiredStateSource.retain): kept through pruning. */
  private accepted: string | null = null;

  constructor(private readonly opts: GitSourceOptions) {
    // The client adds the credentials (up front, so they never depend on a 401
    // round trip), and only to requests for source.url's own origin.
    this.http =
      opts.kind === 'http'
        ? gitHttpClient({ url: opts.url, auth: opts.auth, counters: this.counters, limits: opts.http ?? {} })
        : null;
  }

  /** Fresh headers per call: isomorphic-git adds to the object it is given. */
  private headers(): Record<string, string> {
    return { 'user-agent': 'steward' };
  }

  /** source.url as shown in messages: never with userinfo or a query. */
  private get shownUrl(): string {
    return this.opts.kind === 'http' ? displayUrl(this.opts.url) : this.opts.url;
  }

  private client(): HttpClient {
    if (!this.http) throw new StewardError('SOURCE_UNREACHABLE', 'a local source has no HTTP client');
    return this.http;
  }

  /** A clear, secret-free error for anything that went wrong talking to the source. */
  private unreachable(e: unknown, what: string): StewardError {
    if (e instanceof StewardError) return e;
    const status = (e as { data?: { statusCode?: number } }).data?.statusCode;
    return sourceUnreachable(what, this.shownUrl, errorMessage(e), status, this.opts.auth?.password);
  }

  private async localGitdir(): Promise<string> {
    this.gitdir ??= localGitdir(this.opts.url);
    return this.gitdir;
  }

  private async cacheGitdir(): Promise<string> {
    const git = await loadIsomorphicGit();
    if (this.gitdir) return this.gitdir;
    const dir = cachePath(this.opts.cacheDir, this.opts.url);
    if (!fs.existsSync(join(dir, 'HEAD'))) {
      await fs.promises.mkdir(dir, { recursive: true });
      await git.init({ fs, gitdir: dir, bare: true, defaultBranch: 'steward' });
      // isomorphic-git's fetch needs a remote with a refspec to record what it fetched.
      await git.addRemote({ fs, gitdir: dir, remote: 'origin', url: this.opts.url, force: true });
    }
    this.gitdir = dir;
    return dir;
  }

  /** The commit the configured ref points at now (remote: one info/refs request, no pack). */
  async resolve(): Promise<{ sha: string; fullRef: string }> {
    const git = await loadIsomorphicGit();
    if (this.opts.kind === 'local') {
      const gitdir = await this.localGitdir();
      for (const ref of refCandidates(this.opts.ref)) {
        try {
          const oid = await git.resolveRef({ fs, gitdir, ref });
          return { sha: await this.peel(gitdir, oid), fullRef: ref };
        } catch {}
      }
      throw refNotFound(this.opts.ref, `in ${this.opts.url}`);
    }
    let refs: Awaited<ReturnType<typeof git.listServerRefs>>;
    try {
      refs = await git.listServerRefs({
        http: this.client(),
        url: this.opts.url,
        headers: this.headers(),
        protocolVersion: 1,
        peelTags: true,
      });
    } catch (e) {
      throw this.unreachable(e, 'asking for refs of');
    }
    for (const ref of refCandidates(this.opts.ref)) {
      const hit = refs.find((r) => r.ref === ref);
      if (hit) return { sha: hit.peeled ?? hit.oid, fullRef: ref };
    }
    throw refNotFound(this.opts.ref, `at ${this.shownUrl}`);
  }

  private async peel(gitdir: string, oid: string): Promise<string> {
    const git = await loadIsomorphicGit();
    let cur = oid;
    for (let i = 0; i < 10; i++) {
      const o = await git.readObject({ fs, gitdir, oid: cur, cache: this.cache });
      if (o.type !== 'tag') return cur;
      cur = (o.object as { object: string }).object;
    }
    return cur;
  }

  private async hasCommit(gitdir: string, sha: string): Promise<boolean> {
    const git = await loadIsomorphicGit();
    try {
      await git.readCommit({ fs, gitdir, oid: sha, cache: this.cache });
      return true;
    } catch {
      return false;
    }
  }

  /** Makes sure the commit is available locally (remote: shallow single-branch fetch, only if missing). */
  async ensure(sha: string, fullRef: string): Promise<void> {
    if (this.opts.kind === 'local') return;
    const gitdir = await this.cacheGitdir();
    if (await this.hasCommit(gitdir, sha)) return;
    await this.fetchRef(gitdir, fullRef, { depth: 1 }, 'fetching');
    if (!(await this.hasCommit(gitdir, sha)))
      throw new StewardError(
        'SOURCE_UNREACHABLE',
        `fetched ${fullRef} from ${this.shownUrl} but commit ${sha} is not in it (the ref moved); will retry`,
      );
    if (++this.fetches % ISOMORPHIC_PRUNE_EVERY_FETCHES === 0)
      await this.prune(gitdir, sha).catch(() => undefined);
  }

  /** Keeps `sha` (the revision in force) in the cache through pruning, whatever the branch does next. */
  async retain(sha: string): Promise<void> {
    if (/^[0-9a-f]{40}$/.test(sha)) this.accepted = sha;
  }

  /**
   * Drops the packs that hold no object the kept revisions need (the candidate just fetched and the
   * revision in force): each shallow fetch brings a pack of its own, and without this every push would
   * stay in the state dir for good. isomorphic-git cannot repack, so whole packs go: moved aside first,
   * every needed object read back without them, and only then deleted — if any is missing they are put
   * back (best effort: a failed prune leaves the cache as it was).
   */
  private async prune(gitdir: string, candidate: string): Promise<void> {
    const git = await loadIsomorphicGit();
    const keep = [...new Set([candidate, ...(this.accepted ? [this.accepted] : [])])];
    const needed = new Set<string>();
    const walk = async (oid: string): Promise<void> => {
      if (needed.has(oid)) return;
      needed.add(oid);
      const { tree } = await git.readTree({ fs, gitdir, oid, cache: this.cache });
      for (const e of tree) {
        if (e.type === 'tree') await walk(e.oid);
        else if (e.type === 'blob') needed.add(e.oid);
      }
    };
    for (const sha of keep) {
      const { commit } = await git.readCommit({ fs, gitdir, oid: sha, cache: this.cache });
      needed.add(sha);
      await walk(commit.tree);
    }
    const packDir = join(gitdir, 'objects', 'pack');
    const packs = (await fs.promises.readdir(packDir)).filter((f) => f.endsWith('.idx'));
    const withTime = await Promise.all(
      packs.map(async (f) => ({ f, at: (await fs.promises.stat(join(packDir, f))).mtimeMs })),
    );
    // Newest first: the newest packs cover the kept revisions; an older one stays only for what they lack.
    const covered = new Set<string>();
    const drop: string[] = [];
    for (const { f } of withTime.sort((a, b) => b.at - a.at)) {
      const oids = packIndexOids(await fs.promises.readFile(join(packDir, f)));
      if (oids === null) return; // an index this code does not read: leave the cache alone
      const adds = oids.filter((o) => needed.has(o) && !covered.has(o));
      if (adds.length === 0) drop.push(f.slice(0, -'.idx'.length));
      for (const o of adds) covered.add(o);
    }
    if (drop.length === 0) return;
    const aside = join(gitdir, `prune-${nodeCrypto().randomBytes(6).toString('hex')}`);
    await fs.promises.mkdir(aside);
    const moved: string[] = [];
    try {
      for (const base of drop)
        for (const ext of ['.idx', '.pack']) {
          await fs.promises.rename(join(packDir, base + ext), join(aside, base + ext));
          moved.push(base + ext);
        }
      this.cache = {};
      for (const oid of needed)
        await git.readObject({ fs, gitdir, oid, format: 'content', cache: this.cache });
    } catch (e) {
      for (const f of moved)
        await fs.promises.rename(join(aside, f), join(packDir, f)).catch(() => undefined);
      await fs.promises.rm(aside, { recursive: true, force: true });
      this.cache = {};
      throw e;
    }
    await fs.promises.rm(aside, { recursive: true, force: true });
  }

  async readCommitObject(oid: string): Promise<Buffer | null> {
    const git = await loadIsomorphicGit();
    const gitdir = this.opts.kind === 'local' ? await this.localGitdir() : await this.cacheGitdir();
    try {
      const o = await git.readObject({ fs, gitdir, oid, format: 'content', cache: this.cache });
      if (o.type !== 'commit' || !(o.object instanceof Uint8Array)) return null;
      if (o.object.byteLength > MAX_COMMIT_BYTES) return null;
      return Buffer.from(o.object);
    } catch (e) {
      if ((e as { code?: string }).code === 'NotFoundError') return null;
      throw this.unreachable(e, 'reading');
    }
  }

  async deepen(fullRef: string, by: number): Promise<void> {
    if (this.opts.kind === 'local') return;
    const gitdir = await this.cacheGitdir();
    await this.fetchRef(gitdir, fullRef, { depth: by, relative: true }, 'fetching history from');
  }

  /** One shallow single-branch fetch of `fullRef` into the cache. */
  private async fetchRef(
    gitdir: string,
    fullRef: string,
    depth: { depth: number; relative?: boolean },
    what: string,
  ): Promise<void> {
    const git = await loadIsomorphicGit();
    try {
      await git.fetch({
        fs,
        http: this.client(),
        gitdir,
        cache: this.cache,
        url: this.opts.url,
        ref: `refs/remotes/origin/${fullRef.replace(/^refs\/(heads|tags)\//, '')}`,
        remoteRef: fullRef,
        singleBranch: true,
        ...depth,
        tags: false,
        headers: this.headers(),
      });
    } catch (e) {
      throw this.unreachable(e, what);
    }
  }

  /** Reads every manifest under source.path at the commit, straight from the object store. */
  async readManifests(sha: string, known?: KnownBlob): Promise<ReadResult> {
    const git = await loadIsomorphicGit();
    const gitdir = this.opts.kind === 'local' ? await this.localGitdir() : await this.cacheGitdir();
    const dir = this.opts.path === '.' ? '' : this.opts.path;
    const problems: ReadResult['problems'] = [];
    const blobs: Array<{ path: string; oid: string }> = [];
    let root: Awaited<ReturnType<typeof git.readTree>>;
    try {
      root = await git.readTree({ fs, gitdir, oid: sha, filepath: dir || undefined, cache: this.cache });
    } catch (e) {
      const missing = (e as { code?: string }).code === 'NotFoundError';
      if (missing) return missingPath(dir, sha);
      throw this.unreachable(e, 'reading');
    }
    const walk = async (tree: typeof root.tree, prefix: string): Promise<void> => {
      for (const entry of tree) {
        const p = prefix ? `${prefix}/${entry.path}` : entry.path;
        if (entry.type === 'tree') {
          const sub = await git.readTree({ fs, gitdir, oid: entry.oid, cache: this.cache });
          await walk(sub.tree, p);
        } else if (entry.type === 'blob' && isManifestPath(p, '')) blobs.push({ path: p, oid: entry.oid });
      }
    };
    await walk(root.tree, dir);
    const out: ReadResult = { files: [], problems };
    for (const b of skipKnown(blobs, out, known)) {
      const { blob } = await git.readBlob({ fs, gitdir, oid: b.oid, cache: this.cache });
      addManifest(out, b.path, blob, b.oid);
    }
    return out;
  }
}
