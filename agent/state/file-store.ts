/**
 * The embedded state store: `state.json` (whole state, checksummed, written
 * atomically with fsync) and `audit.log` (one fsynced JSON line per action,
 * rotated by size to `audit.log.1` … `audit.log.<keep>`, read from the end).
 *
 * A corrupt or half-written state file is reported, never silently replaced
 * by a fresh one: a fresh state would mean "unfrozen", which is exactly the
 * wrong default after a crash.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, writeFileAtomic } from '../../core/atomic-file.js';
import { StewardError } from '../../core/errors.js';
import { compileSchema } from '../../core/schema.js';
import {
  type AuditRead,
  type AuditRecord,
  freshState,
  type PersistedState,
  PersistedStateSchema,
  type StateStore,
} from './types.js';

const STATE_FILE = 'state.json';
const AUDIT_FILE = 'audit.log';

/** Rotate `audit.log` once an append would take it past this size. */
export const DEFAULT_AUDIT_MAX_BYTES = 64 * 1024 * 1024;
/** Rotated files kept (`audit.log.1` … `audit.log.5`); older ones are deleted. */
export const DEFAULT_AUDIT_KEEP = 5;
/** Bytes read per step when reading the audit log backwards. */
const AUDIT_CHUNK = 64 * 1024;
/** A line longer than this is skipped (reported), so one bad line cannot make a read unbounded. */
export const MAX_AUDIT_LINE = 4 * 1024 * 1024;

export interface FileStateStoreOptions {
  auditMaxBytes?: number;
  auditKeep?: number;
}

/**
 * Calls `take` for each line of the file from the last to the first (the
 * segment after the final newline first: empty unless the last line is torn)
 * until `done()`; holds at most one chunk plus one line.
 */
async function readLinesBackwards(
  h: FileHandle,
  take: (line: Buffer, offset: number, tooLong: boolean) => void,
  done: () => boolean,
): Promise<void> {
  let pos = (await h.stat()).size;
  let carry = Buffer.alloc(0); // the start of a line whose beginning is further back
  let overlong = false; // the line being collected has passed MAX_AUDIT_LINE; its bytes are dropped
  while (pos > 0 && !done()) {
    const n = Math.min(AUDIT_CHUNK, pos);
    pos -= n;
    const buf = Buffer.alloc(n);
    await h.read(buf, 0, n, pos);
    const data = carry.length > 0 ? Buffer.concat([buf, carry]) : buf;
    let end = data.length;
    for (let i = data.length - 1; i >= 0 && !done(); i--) {
      if (data[i] !== 10) continue;
      take(data.subarray(i + 1, end), pos + i + 1, overlong);
      overlong = false;
      end = i;
    }
    if (done()) return;
    carry = Buffer.from(data.subarray(0, end));
    if (carry.length > MAX_AUDIT_LINE) {
      overlong = true;
      carry = Buffer.alloc(0);
    }
  }
  if (pos === 0 && !done() && (carry.length > 0 || overlong)) take(carry, 0, overlong);
}

interface Envelope {
  format: 'steward-state';
  sha256: string;
  state: PersistedState;
}

const digest = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * Version 1 kept approvals as a list of shas that never expired. They become
 * unbound approvals: bound to the drift of their revision at the next cycle,
 * spent once it converged.
 */
function migrate(s: unknown): unknown {
  if (typeof s !== 'object' || s === null) return s;
  const o = s as Record<string, unknown>;
  if (o['version'] !== 1 || !Array.isArray(o['approvals'])) return s;
  const approvals = (o['approvals'] as unknown[])
    .filter((a): a is string => typeof a === 'string')
    .map((sha) => ({ sha, by: 'unknown (before version 2)', at: 0, keys: null }));
  return { ...o, version: 2, approvals };
}

/** The shape a loaded (and migrated) state must have; fills `revision`, `soak`, `bucket` when a file predates them. */
let compiledShape: ReturnType<typeof compileSchema<typeof PersistedStateSchema>> | undefined;
/** Compiled on first load of a state file, not at import: `steward plan` without a state dir never needs it. */
const checkShape = (data: unknown) => {
  compiledShape ??= compileSchema(PersistedStateSchema, {}, { root: 'the state' });
  return compiledShape(data);
};

export class FileStateStore implements StateStore {
  /** Whether the audit log is known to end with a newline (checked once per process). */
  private auditTailChecked = false;

  private readonly auditMaxBytes: number;
  private readonly auditKeep: number;

  constructor(
    readonly dir: string,
    opts: FileStateStoreOptions = {},
  ) {
    this.auditMaxBytes = opts.auditMaxBytes ?? DEFAULT_AUDIT_MAX_BYTES;
    this.auditKeep = Math.max(1, opts.auditKeep ?? DEFAULT_AUDIT_KEEP);
  }

  get statePath(): string {
    return join(this.dir, STATE_FILE);
  }

  get auditPath(): string {
    return join(this.dir, AUDIT_FILE);
  }

  async load(): Promise<PersistedState> {
    let text: string;
    try {
      text = await readFile(this.statePath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return freshState();
      throw new StewardError('STATE_CORRUPT', `cannot read ${this.statePath}: ${(e as Error).message}`);
    }
    const corrupt = (why: string) =>
      new StewardError(
        'STATE_CORRUPT',
        `${this.statePath} is corrupt (${why}). steward will not start with a guessed state, since that could silently unfreeze it. ` +
          'Inspect the file; restore it from a backup, or move it aside to start fresh (mode and freeze are then reset: freeze again with POST /v1/freeze if needed).',
      );
    let env: Envelope;
    try {
      env = JSON.parse(text) as Envelope;
    } catch {
      // Not V8's message: it quotes the bytes around the error, and state.json holds file contents.
      throw corrupt(`not valid JSON, ${Buffer.byteLength(text)} bytes`);
    }
    if (env?.format !== 'steward-state' || typeof env.sha256 !== 'string')
      throw corrupt('not a steward state file');
    if (digest(JSON.stringify(env.state)) !== env.sha256) throw corrupt('checksum mismatch');
    const checked = checkShape(migrate(env.state));
    if (!checked.ok)
      throw corrupt(
        `unexpected shape: ${checked.issues
          .slice(0, 3)
          .map((i) => i.message)
          .join('; ')}`,
      );
    return checked.value;
  }

  async save(state: PersistedState): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const body = JSON.stringify(state);
    const env = `{"format":"steward-state","sha256":"${digest(body)}","state":${body}}\n`;
    await writeFileAtomic(this.statePath, env, 0o600);
  }

  async appendAudit(records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const data = records.map((r) => `${JSON.stringify(r)}\n`).join('');
    let h = await open(this.auditPath, 'a+', 0o600);
    let created = false;
    try {
      let { size } = await h.stat();
      if (size > 0 && size + Buffer.byteLength(data) > this.auditMaxBytes) {
        await h.close();
        await this.rotateAudit();
        h = await open(this.auditPath, 'a+', 0o600);
        size = 0;
        created = true;
        this.auditTailChecked = true; // a fresh file has no torn line
      }
      let prefix = '';
      if (!this.auditTailChecked) {
        // A crash mid-write can leave a torn last line; start on a fresh line so the next record stays intact.
        if (size > 0) {
          const { buffer } = await h.read(Buffer.alloc(1), 0, 1, size - 1);
          if (buffer[0] !== 10) prefix = '\n';
        }
        this.auditTailChecked = true;
      }
      // writeFile loops over short writes (a disk filling up mid-record); write() would report a torn line durable.
      try {
        await h.writeFile(prefix + data);
        await h.sync();
      } catch (e) {
        // Leave no torn fragment for the next record to be glued to, and re-check the tail before the next one.
        await h.truncate(size).catch(() => {});
        this.auditTailChecked = false;
        throw e;
      }
    } finally {
      await h.close();
    }
    if (created) await fsyncDir(this.dir); // the new file's name is durable too
  }

  /** `audit.log` → `audit.log.1` → … → `audit.log.<keep>` (the oldest is replaced), then fsync the directory. */
  private async rotateAudit(): Promise<void> {
    for (let i = this.auditKeep - 1; i >= 1; i--)
      await rename(`${this.auditPath}.${i}`, `${this.auditPath}.${i + 1}`).catch(
        (e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e;
        },
      );
    await rename(this.auditPath, `${this.auditPath}.1`);
    await fsyncDir(this.dir);
  }

  /**
   * Newest first, reading each file backwards in chunks: memory stays in
   * proportion to `limit`, not to the log. Continues into rotated files
   * (`audit.log.1`, …) while fewer than `limit` records were found.
   * `limit <= 0` reads everything (internal use; the API caps it at 1000).
   */
  async readAudit(limit: number): Promise<AuditRead> {
    const records: AuditRecord[] = [];
    const skipped: AuditRead['skipped'] = [];
    const full = () => limit > 0 && records.length >= limit;
    for (let i = 0; i <= this.auditKeep && !full(); i++) {
      const name = i === 0 ? AUDIT_FILE : `${AUDIT_FILE}.${i}`;
      let h: FileHandle;
      try {
        h = await open(join(this.dir, name), 'r');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      try {
        let last = true; // the segment after the final newline: empty, or a torn last line
        const take = (line: Buffer, offset: number, tooLong: boolean) => {
          const isLast = last;
          last = false;
          if (tooLong) {
            skipped.push({ file: name, offset, reason: `line longer than ${MAX_AUDIT_LINE} bytes` });
            return;
          }
          if (isLast && line.length === 0) return;
          try {
            records.push(JSON.parse(line.toString('utf8')) as AuditRecord);
          } catch {
            skipped.push({
              file: name,
              offset,
              reason: isLast ? 'torn last line (a write was interrupted)' : 'not valid JSON',
            });
          }
        };
        await readLinesBackwards(h, take, full);
      } finally {
        await h.close();
      }
    }
    return { records: limit > 0 ? records.slice(0, limit) : records, skipped };
  }
}
