/**
 * The `file` provider: observes and applies `kind: File` resources under one
 * root directory. Reads are fresh every cycle; writes are atomic.
 *
 * Every access goes through directory handles held from the root down
 * (`held-dir.ts`): nothing is checked by path and then used by path, so a
 * directory swapped for a symlink while the agent works can neither redirect
 * a read nor a write outside the root. Before a write, chmod or delete takes
 * effect, the held parent is looked up again from the root by path and must
 * be the same directory (dev/ino): a parent moved away meanwhile abandons the
 * action (`PATH_ESCAPE`, temp file removed). The root itself must be the one
 * recorded in the state dir (`root-identity.ts`): an empty directory in its
 * place is an observe error for every File, never "every file is absent".
 * A mode fix on a file with more than one hard link rewrites it (temp file,
 * rename) instead of `fchmod`, which would change the other name's file too —
 * perhaps one outside the root.
 */
import { closeSync, readSync, type Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { posix } from 'node:path';
import { TEMP_PREFIX } from '../../core/atomic-file.js';
import { errorMessage, StewardError } from '../../core/errors.js';
import type {
  ApplyAction,
  ApplyControl,
  ApplyOutcome,
  DesiredResource,
  ObserveResult,
  OwnedDoc,
  Provider,
} from '../types.js';
import {
  assertProcFd,
  type HeldDir,
  type OpenFile,
  openParent,
  openParentSync,
  openRegular,
  openRegularSync,
  openRoot,
  openRootSync,
  PROC_FD,
  unlinkIn,
  writeIn,
} from './held-dir.js';
import { fileKind } from './kind.js';
import { RootIdentity } from './root-identity.js';

/** Files observe reads per turn of the event loop: the reads are synchronous, and it yields between batches. */
const BATCH = 256;
/**
 * Largest managed file steward reads. A manifest holds at most 1 MiB, so no desired content is larger; a
 * bigger file (a sparse one costs its writer no disk) is an observe error instead of that much memory.
 */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;

const tooLarge = (rel: string): StewardError =>
  new StewardError(
    'FILE_TOO_LARGE',
    `"${rel}" is larger than ${MAX_FILE_BYTES} bytes, more than any manifest can hold; steward did not read it. Replace it with a regular-sized file (or remove it) and the next cycle reverts it`,
    { path: rel, limit: MAX_FILE_BYTES },
  );

/** The file's content, read at most MAX_FILE_BYTES (checked while reading: the file may grow meanwhile). */
async function readBounded(f: OpenFile, rel: string): Promise<string> {
  if (f.stat.size > MAX_FILE_BYTES) throw tooLarge(rel);
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await f.handle.read(buf, 0, buf.length, total);
    if (bytesRead === 0) break;
    total += bytesRead;
    if (total > MAX_FILE_BYTES) throw tooLarge(rel);
    chunks.push(buf.subarray(0, bytesRead));
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * {@link readBounded} in one synchronous pass: a buffer of the fstat size plus one byte (so growth since the
 * fstat is seen), doubled while the file keeps growing, never past MAX_FILE_BYTES + 1.
 */
function readBoundedSync(fd: number, stat: Stats, rel: string): string {
  if (stat.size > MAX_FILE_BYTES) throw tooLarge(rel);
  let buf = Buffer.allocUnsafe(stat.size + 1);
  let total = 0;
  for (;;) {
    if (total === buf.length) {
      if (total > MAX_FILE_BYTES) throw tooLarge(rel);
      const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, MAX_FILE_BYTES + 1));
      buf.copy(bigger, 0, 0, total);
      buf = bigger;
    }
    const want = buf.length - total;
    const n = readSync(fd, buf, total, want, total);
    total += n;
    // Fewer bytes than asked for from a regular file is its end: no second read() to be told so.
    if (n < want) break;
  }
  return buf.toString('utf8', 0, total);
}

function errCode(e: unknown): string {
  if (e instanceof StewardError) return e.code;
  return (e as NodeJS.ErrnoException)?.code ?? 'UNKNOWN';
}

function missing(rel: string, verb: string): Error {
  return Object.assign(new Error(`cannot ${verb} "${rel}": it does not exist`), { code: 'ENOENT' });
}

const absent = (rel: string): ObserveResult => ({
  status: 'absent',
  id: rel,
  doc: { spec: { ensure: 'absent' } },
});

const observeError = (rel: string, e: unknown): ObserveResult => ({
  status: 'error',
  id: rel,
  error: errorMessage(e),
  code: errCode(e),
});

const MODES = new Map<number, string>();
/** `0644` for 0o644: the few modes a fleet has, formatted once. */
function modeString(bits: number): string {
  const known = MODES.get(bits);
  if (known !== undefined) return known;
  const s = bits.toString(8).padStart(4, '0');
  MODES.set(bits, s);
  return s;
}

/** One file in its held parent: absent, present (content and mode) or an error for this file alone. */
function observeSync(parent: HeldDir, rel: string): ObserveResult {
  try {
    const f = openRegularSync(parent, rel.slice(rel.lastIndexOf('/') + 1), rel);
    if (!f) return absent(rel);
    try {
      const content = readBoundedSync(f.fd, f.stat, rel);
      const mode = modeString(f.stat.mode & 0o7777);
      return { status: 'present', id: rel, doc: { spec: { ensure: 'present', content, mode } } };
    } finally {
      closeSync(f.fd);
    }
  } catch (e) {
    return observeError(rel, e);
  }
}

export interface FileProviderOptions {
  root: string;
  /** The agent's `state.dir`: where the root's identity is recorded. Without it, none is kept. */
  stateDir?: string;
  /**
   * Record the root's identity (and write its marker) the first time; false
   * for one-shot reads such as `steward plan`, which check but never write.
   */
  recordIdentity?: boolean;
  /** Where the kernel exposes open descriptors as directories (tests point it elsewhere). */
  procFd?: string;
}

/** Files per observe call (FileProvider.observeBatch). */
const OBSERVE_BATCH = 1000;

export class FileProvider implements Provider {
  readonly name = 'file';
  readonly kinds = [fileKind];
  /**
   * Files are observed independently of each other: detection asks for this many at a time and diffs each
   * batch before the next, so the contents read of a whole fleet never coexist (issue 12, peak RSS).
   */
  readonly observeBatch = OBSERVE_BATCH;
  private readonly root: string;
  private readonly procFd: string;
  private readonly identity: RootIdentity | null;
  private readonly recordIdentity: boolean;
  /** The folders whose crash leftovers were swept already (once per process each: observe comes in batches). */
  private readonly swept = new Set<string>();

  constructor(opts: FileProviderOptions) {
    this.procFd = opts.procFd ?? PROC_FD;
    assertProcFd(this.procFd); // fail closed at start, never write by path instead
    this.root = opts.root;
    this.identity = opts.stateDir ? new RootIdentity(opts.stateDir, opts.root) : null;
    this.recordIdentity = opts.recordIdentity ?? true;
  }

  /** The root, held open and checked to be the managed one; an unreadable root is an error for every File, never "missing". */
  private async openRoot(adopt: boolean, sync = false): Promise<HeldDir> {
    let root: HeldDir;
    try {
      root = sync ? openRootSync(this.root, this.procFd) : await openRoot(this.root, this.procFd);
    } catch (e) {
      throw new StewardError(
        'OBSERVE_FAILED',
        `providers.file.root "${this.root}" is not a readable directory (${errorMessage(e)}); create it or fix the config`,
      );
    }
    try {
      await this.identity?.check(root, adopt && this.recordIdentity);
    } catch (e) {
      await root.close();
      throw e;
    }
    return root;
  }

  async observe(resources: readonly DesiredResource[]): Promise<Map<string, ObserveResult>> {
    const out = new Map<string, ObserveResult>();
    let root: HeldDir;
    try {
      root = await this.openRoot(resources.length > 0, true); // observe: no thread-pool round trip per directory
    } catch (e) {
      for (const r of resources)
        out.set(r.key, {
          status: 'error',
          id: r.spec['path'] as string,
          error: errorMessage(e),
          code: errCode(e),
        });
      return out;
    }
    try {
      if (this.recordIdentity) await this.sweepTemps(root, resources);
      const results = await this.observeInBulk(root, resources);
      for (let i = 0; i < resources.length; i++) out.set(resources[i]!.key, results[i]!);
    } finally {
      await root.close();
    }
    return out;
  }

  /**
   * Once per process (the daemon, not one-shot commands): removes temp files a crash (kill -9 mid-write) left in
   * the folders of managed files. The prefix is steward's: no File may be named with it. Best effort, through
   * held directories like every other write; a folder that cannot be read is left alone.
   */
  private async sweepTemps(root: HeldDir, resources: readonly DesiredResource[]): Promise<void> {
    const dirs = new Set<string>();
    for (const r of resources) {
      const dir = posix.dirname(r.spec['path'] as string);
      if (!this.swept.has(dir)) dirs.add(dir);
    }
    for (const dir of dirs) {
      this.swept.add(dir);
      const parent = dir === '.' ? root : await openParent(root, `${dir}/x`, false).catch(() => null);
      if (!parent) continue;
      try {
        const names = await readdir(parent.at('.')).catch(() => [] as string[]);
        for (const name of names.filter((n) => n.startsWith(TEMP_PREFIX))) {
          const st = await lstat(parent.at(name)).catch(() => null);
          if (st?.isFile()) await unlinkIn(parent, name).catch(() => undefined);
        }
      } finally {
        if (parent !== root) await parent.close();
      }
    }
  }

  /**
   * Observes every resource, one held directory per folder (opened from the root with O_NOFOLLOW, as for a
   * single file) and the files in it read synchronously through that handle, BATCH at a time between turns
   * of the event loop: no thread-pool round trip and no walk from the root per file.
   */
  private async observeInBulk(
    root: HeldDir,
    resources: readonly DesiredResource[],
  ): Promise<ObserveResult[]> {
    const results: ObserveResult[] = new Array(resources.length);
    const byFolder = new Map<string, number[]>();
    // Indexed loops over every resource: `for…of entries()` allocates a pair and an iterator result per
    // resource until V8 optimises the loop (≈ 1.7 MB per 3,000 Files, allocation sampling profile).
    for (let i = 0; i < resources.length; i++) {
      const rel = resources[i]!.spec['path'] as string;
      const slash = rel.lastIndexOf('/');
      const folder = slash < 0 ? '' : rel.slice(0, slash);
      const group = byFolder.get(folder);
      if (group) group.push(i);
      else byFolder.set(folder, [i]);
    }
    let batch = 0;
    for (const group of byFolder.values()) {
      const rels = group.map((i) => resources[i]!.spec['path'] as string);
      let parent: HeldDir | null;
      try {
        parent = openParentSync(root, rels[0]!);
      } catch (e) {
        for (const [j, i] of group.entries()) results[i] = observeError(rels[j]!, e);
        continue;
      }
      try {
        for (let j = 0; j < group.length; j++) {
          const i = group[j]!;
          results[i] = parent ? observeSync(parent, rels[j]!) : absent(rels[j]!);
          if (++batch >= BATCH) {
            batch = 0;
            await new Promise<void>((r) => setImmediate(r));
          }
        }
      } finally {
        if (parent && parent !== root) parent.closeSync();
      }
    }
    return results;
  }

  /** Runs `fn` with the held parent directory of `rel` (null when missing and not created), then closes it. */
  private async inParent<T>(
    root: HeldDir,
    rel: string,
    create: boolean,
    fn: (parent: HeldDir | null) => Promise<T>,
  ): Promise<T> {
    const parent = await openParent(root, rel, create);
    try {
      return await fn(parent);
    } finally {
      if (parent && parent !== root) await parent.close();
    }
  }

  async apply(actions: readonly ApplyAction[], ctl: ApplyControl): Promise<ApplyOutcome[]> {
    const out: ApplyOutcome[] = [];
    for (const a of actions) {
      if (ctl.shouldStop()) break;
      const rel = a.resource.spec['path'] as string;
      const t0 = performance.now();
      try {
        const root = await this.openRoot(false);
        try {
          await this.applyOne(root, a, rel);
        } finally {
          await root.close();
        }
        out.push({
          key: a.resource.key,
          id: rel,
          outcome: 'applied',
          durationMs: Math.round(performance.now() - t0),
        });
      } catch (e) {
        const durationMs = Math.round(performance.now() - t0);
        out.push({
          key: a.resource.key,
          id: rel,
          outcome: 'failed',
          error: errorMessage(e),
          code: errCode(e),
          durationMs,
        });
      }
      await ctl.onOutcome(out[out.length - 1]!); // audited before the next action starts
    }
    return out;
  }

  /**
   * Throws unless `parent` is still the directory that `rel`'s parent path
   * leads to from the root: it was not moved away (perhaps outside the root)
   * while steward held it.
   */
  private async assertStillInPlace(parent: HeldDir, rel: string): Promise<void> {
    const root = await this.openRoot(false);
    try {
      const now = await this.inParent(root, rel, false, async (p) => (p ? p.identity() : null));
      if (now !== (await parent.identity()))
        throw new StewardError(
          'PATH_ESCAPE',
          `the directory of "${rel}" was moved or replaced while steward changed it; nothing was changed, the next cycle looks again`,
          { path: rel },
        );
    } finally {
      await root.close();
    }
  }

  private async applyOne(root: HeldDir, a: ApplyAction, rel: string): Promise<void> {
    const name = posix.basename(rel);
    const desired = a.resource.desired.spec;
    const touched = new Set(a.ops.map((op) => op.path.split('/')[2]));
    if (desired['ensure'] === 'absent') {
      if (!touched.has('ensure')) return;
      await this.inParent(root, rel, false, async (parent) => {
        const f = parent && (await openRegular(parent, name, rel));
        if (!parent || !f) return;
        await f.handle.close();
        await this.assertStillInPlace(parent, rel);
        await unlinkIn(parent, name);
      });
      return;
    }
    const observed: OwnedDoc['spec'] = a.observed.spec;
    const mode = touched.has('mode')
      ? (desired['mode'] as string)
      : ((observed['mode'] ?? desired['mode'] ?? '0644') as string);
    const modeBits = Number.parseInt(mode, 8);
    if (touched.has('ensure') || touched.has('content')) {
      const content =
        (touched.has('content') || observed['content'] === undefined
          ? desired['content']
          : observed['content']) ?? '';
      await this.inParent(root, rel, true, async (parent) => {
        if (!parent) throw missing(rel, 'create');
        const existing = await openRegular(parent, name, rel); // refuses to replace a non-file
        await existing?.handle.close();
        await writeIn(parent, name, content as string, modeBits, () => this.assertStillInPlace(parent, rel));
      });
    } else if (touched.has('mode')) {
      await this.inParent(root, rel, false, async (parent) => {
        const f = parent && (await openRegular(parent, name, rel));
        if (!parent || !f) throw missing(rel, 'chmod');
        try {
          await this.assertStillInPlace(parent, rel);
          if (f.stat.nlink === 1) await f.handle.chmod(modeBits);
          else {
            // Shared with another name, perhaps outside the root: fchmod would change that file too.
            const content = await readBounded(f, rel);
            await writeIn(parent, name, content, modeBits, () => this.assertStillInPlace(parent, rel));
          }
        } finally {
          await f.handle.close();
        }
      });
    }
  }
}
