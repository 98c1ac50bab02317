/**
 * The `file` provider: observes and applies `kind: File` resources under one
 * root directory. Reads are fresh every cycle; writes are atomic.
 */
import { chmod, lstat, readFile, realpath, unlink } from 'node:fs/promises';
import { writeFileAtomic } from '../../agent/atomic-file.js';
import { mapLimit } from '../../agent/concurrency.js';
import { errorMessage, StewardError } from '../../agent/errors.js';
import type {
  ApplyAction,
  ApplyControl,
  ApplyOutcome,
  DesiredResource,
  ObserveResult,
  OwnedDoc,
  Provider,
} from '../types.js';
import { fileKind } from './kind.js';
import { ensureParents, resolveInside } from './paths.js';

const PARALLEL = 16;

function errCode(e: unknown): string {
  if (e instanceof StewardError) return e.code;
  return (e as NodeJS.ErrnoException)?.code ?? 'UNKNOWN';
}

export class FileProvider implements Provider {
  readonly name = 'file';
  readonly kinds = [fileKind];
  private readonly root: string;

  constructor(opts: { root: string }) {
    this.root = opts.root;
  }

  /** The root's real path; an unreadable root is an observe error for every File, never "missing". */
  private async realRoot(): Promise<string> {
    try {
      const real = await realpath(this.root);
      const st = await lstat(real);
      if (!st.isDirectory()) throw new Error('not a directory');
      return real;
    } catch (e) {
      throw new StewardError(
        'OBSERVE_FAILED',
        `providers.file.root "${this.root}" is not a readable directory (${errorMessage(e)}); create it or fix the config`,
      );
    }
  }

  async observe(resources: readonly DesiredResource[]): Promise<Map<string, ObserveResult>> {
    const out = new Map<string, ObserveResult>();
    let root: string;
    try {
      root = await this.realRoot();
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
    const results = await mapLimit(resources, PARALLEL, (r) =>
      this.observeOne(root, r.spec['path'] as string),
    );
    for (const [i, r] of resources.entries()) out.set(r.key, results[i]!);
    return out;
  }

  private async observeOne(root: string, rel: string): Promise<ObserveResult> {
    try {
      const { abs } = await resolveInside(root, rel);
      let st: Awaited<ReturnType<typeof lstat>>;
      try {
        st = await lstat(abs);
      } catch (e) {
        const c = errCode(e);
        if (c === 'ENOENT' || c === 'ENOTDIR')
          return { status: 'absent', id: rel, doc: { spec: { ensure: 'absent' } } };
        throw e;
      }
      if (st.isSymbolicLink())
        throw new StewardError(
          'FILE_NOT_REGULAR',
          `"${rel}" is a symlink; steward manages regular files only`,
          { path: rel },
        );
      if (!st.isFile())
        throw new StewardError('FILE_NOT_REGULAR', `"${rel}" exists but is not a regular file`, {
          path: rel,
        });
      const content = await readFile(abs, 'utf8');
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      return { status: 'present', id: rel, doc: { spec: { ensure: 'present', content, mode } } };
    } catch (e) {
      return { status: 'error', id: rel, error: errorMessage(e), code: errCode(e) };
    }
  }

  async apply(actions: readonly ApplyAction[], ctl: ApplyControl): Promise<ApplyOutcome[]> {
    const out: ApplyOutcome[] = [];
    for (const a of actions) {
      if (ctl.shouldStop()) break;
      const rel = a.resource.spec['path'] as string;
      const t0 = performance.now();
      try {
        await this.applyOne(a, rel);
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

  private async applyOne(a: ApplyAction, rel: string): Promise<void> {
    const root = await this.realRoot();
    const { abs } = await resolveInside(root, rel);
    const desired = a.resource.desired.spec;
    const touched = new Set(a.ops.map((op) => op.path.split('/')[2]));
    if (desired['ensure'] === 'absent') {
      if (!touched.has('ensure')) return;
      const st = await lstat(abs).catch(() => null);
      if (st && !st.isFile())
        throw new StewardError('FILE_NOT_REGULAR', `refusing to delete "${rel}": not a regular file`);
      if (st) await unlink(abs);
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
      const st = await lstat(abs).catch(() => null);
      if (st && !st.isFile())
        throw new StewardError('FILE_NOT_REGULAR', `refusing to replace "${rel}": not a regular file`);
      await ensureParents(root, abs, rel);
      await writeFileAtomic(abs, content as string, modeBits);
    } else if (touched.has('mode')) {
      const st = await lstat(abs);
      if (!st.isFile())
        throw new StewardError('FILE_NOT_REGULAR', `refusing to chmod "${rel}": not a regular file`);
      await chmod(abs, modeBits);
    }
  }
}
