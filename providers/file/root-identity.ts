/**
 * Unreadable is not absent: telling the root steward manages from an empty
 * directory in its place (an unmounted volume, a root moved away and
 * recreated). Without this, every File would read as missing and the agent
 * would recreate the whole fleet in the wrong place.
 *
 * The first time the provider observes Files under a root, it writes a
 * marker `.steward-root` (a random id) into the root and records the root's
 * identity in the agent's state dir (`file-root.json`: the configured path,
 * the root's st_dev and st_ino, the marker id). On every later observe and
 * apply, the root held open is checked against it: a different dev/ino, or a
 * missing or different marker, is `FILE_ROOT_CHANGED` for every File — an
 * observe error, never "absent", so nothing is created. Mounting the volume
 * back makes the same checks pass again. A deliberate move is accepted by
 * deleting `file-root.json` (and the new root's marker, if it has one): the
 * next observe adopts the root and writes a new marker.
 *
 * The other way round — a marker in the root but no record in the state dir —
 * means the state is gone (an empty state dir: a volume not mounted, a wiped
 * disk), and with it a persisted freeze, approvals and backoff: the daemon
 * refuses (FILE_ROOT_CHANGED) until the state is back or the marker deleted.
 * One-shot commands (plan) keep no record and only check.
 *
 * The marker is steward's, not the fleet's: no File may name it (kind
 * validation), so it is never diffed, managed or deleted. A configured root
 * path other than the recorded one is a new root (the config changed), and
 * is adopted. Without a state dir (a one-shot tool without state), no
 * identity is kept and the provider behaves as before.
 */
import { closeSync, readFileSync, readSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../core/atomic-file.js';
import { StewardError } from '../../core/errors.js';
import { type HeldDir, openRegularSync, writeIn } from './held-dir.js';
import { nodeCrypto } from '../../core/builtins.js';

export const ROOT_MARKER = '.steward-root';
const IDENTITY_FILE = 'file-root.json';

interface Identity {
  root: string;
  dev: string;
  ino: string;
  marker: string;
}

function isIdentity(v: unknown): v is Identity {
  const o = v as Record<string, unknown> | null;
  return (
    typeof o === 'object' &&
    o !== null &&
    ['root', 'dev', 'ino', 'marker'].every((k) => typeof o[k] === 'string' && o[k] !== '')
  );
}

export class RootIdentity {
  readonly file: string;

  constructor(
    private readonly stateDir: string,
    private readonly rootPath: string,
  ) {
    this.file = join(stateDir, IDENTITY_FILE);
  }

  /**
   * Throws `FILE_ROOT_CHANGED` unless `root` is the recorded root. With
   * nothing recorded yet, `adopt` records this one (else it passes as is).
   */
  async check(root: HeldDir, adopt: boolean): Promise<void> {
    // Read synchronously (three small reads every cycle: no thread-pool round trips); only adopting writes.
    const st = root.statSync();
    const dev = String(st.dev);
    const ino = String(st.ino);
    const recorded = this.read();
    const marker = readMarker(root);
    if (!recorded) {
      if (!adopt) return;
      // A marker without a record: this root was managed by a steward whose state is gone — most likely an
      // empty state dir (a volume not mounted), where a persisted freeze or the backoff would be lost too.
      if (marker !== null)
        throw new StewardError(
          'FILE_ROOT_CHANGED',
          `providers.file.root "${this.rootPath}" holds steward's marker ${ROOT_MARKER}, but ${this.file} does not record it: the state directory looks lost or not mounted (a persisted freeze would be lost with it), so nothing is acted on. Mount the state volume; to start afresh on purpose, delete ${ROOT_MARKER} in the root`,
          { root: this.rootPath },
        );
      await this.adopt(root, dev, ino, marker);
      return;
    }
    const why =
      recorded.dev !== dev || recorded.ino !== ino
        ? `its device/inode is ${dev}/${ino}, recorded ${recorded.dev}/${recorded.ino}`
        : marker === null
          ? `its marker file ${ROOT_MARKER} is missing`
          : marker !== recorded.marker
            ? `its marker file ${ROOT_MARKER} holds another id`
            : null;
    if (why)
      throw new StewardError(
        'FILE_ROOT_CHANGED',
        `providers.file.root "${this.rootPath}" is not the directory steward manages (${why}); nothing is treated as missing. If a volume is not mounted, mount it; if the root was replaced on purpose, delete ${this.file} (and the root's ${ROOT_MARKER}, if it has one) and the next cycle adopts it`,
        { root: this.rootPath },
      );
  }

  private async adopt(root: HeldDir, dev: string, ino: string, marker: string | null): Promise<void> {
    const id = marker ?? nodeCrypto().randomBytes(16).toString('hex');
    if (marker === null) await writeIn(root, ROOT_MARKER, `${id}\n`, 0o644);
    const identity: Identity = { root: this.rootPath, dev, ino, marker: id };
    await mkdir(this.stateDir, { recursive: true });
    await writeFileAtomic(this.file, `${JSON.stringify(identity)}\n`, 0o600);
  }

  /** The recorded identity of this root; null when none (or one for another configured root). */
  private read(): Identity | null {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      v = null;
    }
    if (!isIdentity(v))
      throw new StewardError(
        'STATE_CORRUPT',
        `${this.file} is not a root identity record; delete it and the next cycle records providers.file.root afresh`,
      );
    return v.root === this.rootPath ? v : null;
  }
}

/** The marker's id, or null when the root has none. */
function readMarker(root: HeldDir): string | null {
  const f = openRegularSync(root, ROOT_MARKER, ROOT_MARKER);
  if (!f) return null;
  try {
    const buf = Buffer.alloc(128);
    return buf
      .subarray(0, readSync(f.fd, buf, 0, buf.length, 0))
      .toString('utf8')
      .trim();
  } finally {
    closeSync(f.fd);
  }
}
