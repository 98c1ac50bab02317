/**
 * The embedded state store: `state.json` (a snapshot of the whole state,
 * checksummed, written atomically with fsync), `state.journal` (what each save
 * changed since that snapshot: one checksummed, fsynced line per save) and
 * `audit.log` (one fsynced JSON line per action, rotated by size to
 * `audit.log.1` … `audit.log.<keep>`, read from the end).
 *
 * A save writes what changed since the last save, not the whole fleet: the
 * records whose object is not the one saved last (records are replaced, never
 * mutated — the store freezes what it saved, so a mutation in place throws
 * instead of going unsaved), the keys that went, and the small head (revision,
 * soak, bucket). Once the journal outgrows the snapshot it is compacted into a
 * new snapshot. An operator decision (mode, freeze, approvals) is written into
 * the snapshot itself at once. A save that returns has been fsynced.
 *
 * Loading replays the journal lines of the current snapshot (each names the
 * snapshot's checksum; lines of an older one, left by a crash during
 * compaction, are already in it). A torn last line — a save that never
 * returned — is ignored and reported (`loadNotes`, `onNote`); any other bad
 * line makes the state corrupt.
 *
 * A corrupt or half-written state file is reported, never silently replaced
 * by a fresh one: a fresh state would mean "unfrozen", which is exactly the
 * wrong default after a crash.
 */
import { type FileHandle, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, writeFileAtomic } from '../../core/atomic-file.js';
import { StewardError } from '../../core/errors.js';
import { sameJson } from '../../core/object.js';
import { type Checker, compileSchema, precompiledChecker } from '../../core/schema.js';
import {
  type AuditRead,
  type AuditRecord,
  freshState,
  type PersistedState,
  PersistedStateSchema,
  type StateStore,
} from './types.js';
import { nodeCrypto } from '../../core/builtins.js';

const STATE_FILE = 'state.json';
const JOURNAL_FILE = 'state.journal';
const AUDIT_FILE = 'audit.log';

/** Rotate `audit.log` once an append would take it past this size. */
export const DEFAULT_AUDIT_MAX_BYTES = 64 * 1024 * 1024;
/** Rotated files kept (`audit.log.1` … `audit.log.5`); older ones are deleted. */
export const DEFAULT_AUDIT_KEEP = 5;
/** Bytes read per step when reading the audit log backwards. */
const AUDIT_CHUNK = 64 * 1024;
/** A line longer than this is skipped (reported), so one bad line cannot make a read unbounded. */
export const MAX_AUDIT_LINE = 4 * 1024 * 1024;

/** The journal is compacted into the snapshot once it is larger than the snapshot and than this. */
export const DEFAULT_COMPACT_MIN_BYTES = 4 * 1024 * 1024;

export interface FileStateStoreOptions {
  auditMaxBytes?: number;
  auditKeep?: number;
  compactMinBytes?: number;
  /** Told what a load found and set aside (a torn journal line); never file contents. */
  onNote?: (message: string) => void;
}

type ResourceRecord = PersistedState['resources'][string];
/** Everything but the records: small, written whole with every journal line. */
type Head = Omit<PersistedState, 'resources'>;

interface JournalEntry {
  /** The checksum of the snapshot this line follows. */
  base: string;
  /** 1, 2, … since that snapshot. */
  seq: number;
  head: Head;
  set: Record<string, ResourceRecord>;
  del: string[];
}

/** What is durable now, as the last load or save left it: the base of the next journal line. */
interface Saved {
  base: string;
  seq: number;
  operator: string;
  head: string;
  /**
   * The records object of the state last loaded or saved, frozen (container and records): the very object the
   * agent holds as its state, not a copy of it (one structure of every record, not two).
   */
  resources: Readonly<Record<string, ResourceRecord>>;
  /** How many records `resources` has. */
  count: number;
  snapshotBytes: number;
  journalBytes: number;
  /** The journal must be rewritten before it is appended to (a torn line, a failed write or truncate). */
  compact: boolean;
}

const headOf = ({ resources: _, ...head }: PersistedState): Head => head;
/** The operator's decisions: written into the snapshot when they change, never only into the journal. */
const operatorOf = (s: PersistedState): string => JSON.stringify([s.version, s.mode, s.freeze, s.approvals]);

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

const digest = (s: string): string => nodeCrypto().createHash('sha256').update(s).digest('hex');

/**
 * Freezes the records and the object that holds them (what the store keeps as saved): a record set or changed
 * in place throws instead of going unsaved. One level deep: what a record holds (`lastApplied`, a desired
 * document shared with the revision) is never changed in place by any code, and is not frozen. Returns how
 * many records there are.
 */
function freezeRecords(resources: Record<string, ResourceRecord>): number {
  let n = 0;
  for (const k in resources) {
    n++;
    const r = resources[k]!;
    if (!Object.isFrozen(r)) Object.freeze(r);
  }
  Object.freeze(resources);
  return n;
}

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
let compiledShape: Checker<typeof PersistedStateSchema> | undefined;
const SHAPE = { root: 'the state' };
/**
 * The build's precompiled validator (scripts/bundle-cli.mjs: beside this module in dist/agent/state/, and in
 * dist/bundle/ for the bundle's chunk), else compiled here, on the first load of a state file: compiling it
 * loaded ajv and cost ≈ 80 ms of every `steward plan` on a host whose agent has a state file (issue 12).
 */
async function shapeChecker(): Promise<Checker<typeof PersistedStateSchema>> {
  compiledShape ??=
    (await precompiledChecker(
      new URL('./state-schema.compiled.js', import.meta.url),
      PersistedStateSchema,
      {},
      SHAPE,
    )) ?? compileSchema(PersistedStateSchema, {}, SHAPE);
  return compiledShape;
}

export class FileStateStore implements StateStore {
  /** Whether the audit log is known to end with a newline (checked once per process). */
  private auditTailChecked = false;

  private readonly auditMaxBytes: number;
  private readonly auditKeep: number;
  private readonly compactMinBytes: number;
  private readonly onNote: ((message: string) => void) | undefined;
  private saved: Saved | undefined;
  /** Bytes written to state.json and state.journal by this store (a counter for tests and benchmarks). */
  bytesWritten = 0;
  /** What the last load set aside (a torn journal line). */
  readonly loadNotes: string[] = [];

  constructor(
    readonly dir: string,
    opts: FileStateStoreOptions = {},
  ) {
    this.auditMaxBytes = opts.auditMaxBytes ?? DEFAULT_AUDIT_MAX_BYTES;
    this.auditKeep = Math.max(1, opts.auditKeep ?? DEFAULT_AUDIT_KEEP);
    this.compactMinBytes = opts.compactMinBytes ?? DEFAULT_COMPACT_MIN_BYTES;
    this.onNote = opts.onNote;
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
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new StewardError('STATE_CORRUPT', `cannot read ${this.statePath}: ${(e as Error).message}`);
      const journal = await stat(this.journalPath).catch(() => null);
      if (journal && journal.size > 0)
        throw new StewardError(
          'STATE_CORRUPT',
          `${this.journalPath} exists but ${this.statePath} does not: the journal cannot be read without the snapshot it follows. steward will not start with a guessed state; restore state.json from a backup, or move both aside to start fresh (mode and freeze are then reset).`,
        );
      return freshState();
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
    const state = migrate(env.state) as PersistedState;
    const journal = await this.replayJournal(state, env.sha256, corrupt);
    const checked = (await shapeChecker())(state);
    if (!checked.ok)
      throw corrupt(
        `unexpected shape: ${checked.issues
          .slice(0, 3)
          .map((i) => i.message)
          .join('; ')}`,
      );
    const loaded = checked.value;
    const count = freezeRecords(loaded.resources);
    this.saved = {
      base: env.sha256,
      seq: journal.seq,
      operator: operatorOf(loaded),
      head: JSON.stringify(headOf(loaded)),
      resources: loaded.resources,
      count,
      snapshotBytes: Buffer.byteLength(text),
      journalBytes: journal.bytes,
      compact: journal.torn || journal.foreign,
    };
    return loaded;
  }

  get journalPath(): string {
    return join(this.dir, JOURNAL_FILE);
  }

  /** Applies the journal lines that follow the snapshot `base` to `state` (in place). */
  private async replayJournal(
    state: PersistedState,
    base: string,
    corrupt: (why: string) => StewardError,
  ): Promise<{ seq: number; bytes: number; torn: boolean; foreign: boolean }> {
    let data: Buffer;
    try {
      data = await readFile(this.journalPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        return { seq: 0, bytes: 0, torn: false, foreign: false };
      throw new StewardError('STATE_CORRUPT', `cannot read ${this.journalPath}: ${(e as Error).message}`);
    }
    const end = data.lastIndexOf(10) + 1; // after the last complete line
    const torn = end < data.length;
    if (torn) {
      const note = `${this.journalPath}: ignored a torn last line (${data.length - end} bytes: a save interrupted before it returned); the state is the last complete save`;
      this.loadNotes.push(note);
      this.onNote?.(note);
    }
    let seq = 0;
    let foreign = false;
    let offset = 0;
    while (offset < end) {
      const nl = data.indexOf(10, offset);
      const line = data.toString('utf8', offset, nl);
      const at = offset;
      offset = nl + 1;
      const space = line.indexOf(' ');
      const json = line.slice(space + 1);
      if (space !== 64 || digest(json) !== line.slice(0, 64))
        throw corrupt(`${JOURNAL_FILE}: checksum mismatch in the line at byte ${at}`);
      let entry: JournalEntry;
      try {
        entry = JSON.parse(json) as JournalEntry;
      } catch {
        throw corrupt(`${JOURNAL_FILE}: the line at byte ${at} is not valid JSON`);
      }
      if (typeof entry?.set !== 'object' || entry.set === null || !Array.isArray(entry.del))
        throw corrupt(`${JOURNAL_FILE}: the line at byte ${at} is not a journal entry`);
      if (entry.base !== base) {
        foreign = true; // written before the snapshot was last compacted: already in it
        continue;
      }
      if (entry.seq !== seq + 1) throw corrupt(`${JOURNAL_FILE}: line ${entry.seq} follows line ${seq}`);
      seq = entry.seq;
      Object.assign(state, entry.head);
      for (const [k, r] of Object.entries(entry.set)) state.resources[k] = r;
      for (const k of entry.del) delete state.resources[k];
    }
    return { seq, bytes: data.length, torn, foreign };
  }

  async save(state: PersistedState): Promise<void> {
    const saved = this.saved;
    if (!saved || saved.compact || operatorOf(state) !== saved.operator) {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      return this.compact(state);
    }
    // The very records saved last (a cycle that changed none hands them back): nothing to compare.
    if (state.resources === saved.resources) {
      const head = headOf(state);
      const headJson = JSON.stringify(head);
      if (headJson === saved.head) return;
      return this.append(
        { base: saved.base, seq: saved.seq + 1, head, set: {}, del: [] },
        headJson,
        state,
        saved,
      );
    }
    const set: Record<string, ResourceRecord> = {};
    let written = 0;
    const del: string[] = [];
    let kept = 0;
    let count = 0;
    // for…in, not Object.entries: no [key, record] pair per resource (100k at scale) on every save.
    for (const k in state.resources) {
      count++;
      const r = state.resources[k]!;
      const before = Object.hasOwn(saved.resources, k) ? saved.resources[k] : undefined;
      if (before === undefined) continue;
      kept++;
      // The same record, or one rebuilt with the same content (a drifted resource's record every cycle, every
      // record in the first cycle after a restart): not written again. Compared without a string of either.
      if (before !== r && !sameJson(before, r)) {
        set[k] = r;
        written++;
      }
    }
    // Records the saved state did not have are new; records it had that are gone are removed.
    if (kept < count)
      for (const k in state.resources)
        if (!Object.hasOwn(saved.resources, k)) {
          set[k] = state.resources[k]!;
          written++;
        }
    if (kept < saved.count)
      for (const k in saved.resources) if (!Object.hasOwn(state.resources, k)) del.push(k);
    const head = headOf(state);
    const headJson = JSON.stringify(head);
    if (written === 0 && del.length === 0 && headJson === saved.head) {
      // Nothing new to make durable: what is on disk is this state, which is kept as saved from now on.
      saved.count = freezeRecords(state.resources);
      saved.resources = state.resources;
      return;
    }
    return this.append({ base: saved.base, seq: saved.seq + 1, head, set, del }, headJson, state, saved);
  }

  /** Appends `entry` (what changed since `saved`) to the journal; `state` is what is saved from then on. */
  private async append(
    entry: JournalEntry,
    headJson: string,
    state: PersistedState,
    saved: Saved,
  ): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const json = JSON.stringify(entry);
    const line = `${digest(json)} ${json}\n`;
    await this.appendJournal(line, saved);
    saved.seq = entry.seq;
    saved.head = headJson;
    // The very records saved last are frozen already (a head-only save walks no record).
    if (state.resources !== saved.resources) saved.count = freezeRecords(state.resources);
    saved.resources = state.resources;
    saved.journalBytes += Buffer.byteLength(line);
    if (saved.journalBytes > Math.max(this.compactMinBytes, saved.snapshotBytes))
      await this.compact(state).catch((e: unknown) => {
        // The save itself is durable (the journal line is); compacting is retried at the next save.
        saved.compact = true;
        this.onNote?.(
          `compacting ${this.journalPath} failed (${(e as Error).message}); retried at the next save`,
        );
      });
  }

  adopt(state: PersistedState): boolean {
    const saved = this.saved;
    if (!saved || saved.compact || operatorOf(state) !== saved.operator) return false;
    if (JSON.stringify(headOf(state)) !== saved.head) return false;
    let count = 0;
    for (const k in state.resources) {
      count++;
      const before = Object.hasOwn(saved.resources, k) ? saved.resources[k] : undefined;
      if (before === undefined || (before !== state.resources[k] && !sameJson(before, state.resources[k])))
        return false;
    }
    if (count !== saved.count) return false;
    freezeRecords(state.resources);
    saved.resources = state.resources;
    return true;
  }

  /** Appends one line and fsyncs it; on failure the journal is cut back to what it was. */
  private async appendJournal(line: string, saved: Saved): Promise<void> {
    const h = await open(this.journalPath, 'a', 0o600);
    try {
      await h.writeFile(line);
      await h.datasync();
      this.bytesWritten += Buffer.byteLength(line);
    } catch (e) {
      await h.truncate(saved.journalBytes).catch(() => {
        saved.compact = true; // a fragment may be left: the next save rewrites the snapshot and empties the journal
      });
      throw e;
    } finally {
      await h.close();
    }
  }

  /** Writes the whole state as the new snapshot, then empties the journal (its lines name the old snapshot). */
  private async compact(state: PersistedState): Promise<void> {
    const body = JSON.stringify(state);
    const sha256 = digest(body);
    const env = `{"format":"steward-state","sha256":"${sha256}","state":${body}}\n`;
    this.saved = undefined; // until the new snapshot is durable, nothing is known to be
    await writeFileAtomic(this.statePath, env, 0o600);
    const bytes = Buffer.byteLength(env);
    this.bytesWritten += bytes;
    let compact = false;
    try {
      const h = await open(this.journalPath, 'r+');
      try {
        await h.truncate(0);
        await h.datasync();
      } finally {
        await h.close();
      }
    } catch (e) {
      compact = (e as NodeJS.ErrnoException).code !== 'ENOENT'; // lines of the old snapshot are ignored on load
    }
    const count = freezeRecords(state.resources);
    this.saved = {
      base: sha256,
      seq: 0,
      operator: operatorOf(state),
      head: JSON.stringify(headOf(state)),
      resources: state.resources,
      count,
      snapshotBytes: bytes,
      journalBytes: 0,
      compact,
    };
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
