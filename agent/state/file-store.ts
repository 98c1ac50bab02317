/**
 * The embedded state store: `state.json` (whole state, checksummed, written
 * atomically with fsync) and `audit.log` (one fsynced JSON line per action).
 *
 * A corrupt or half-written state file is reported, never silently replaced
 * by a fresh one: a fresh state would mean "unfrozen", which is exactly the
 * wrong default after a crash.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../core/atomic-file.js';
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
const checkShape = compileSchema(PersistedStateSchema, {}, { root: 'the state' });

export class FileStateStore implements StateStore {
  /** Whether the audit log is known to end with a newline (checked once per process). */
  private auditTailChecked = false;

  constructor(readonly dir: string) {}

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
    } catch (e) {
      throw corrupt(`not valid JSON: ${(e as Error).message}`);
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
    const h = await open(this.auditPath, 'a+', 0o600);
    try {
      let prefix = '';
      if (!this.auditTailChecked) {
        // A crash mid-write can leave a torn last line; start on a fresh line so the next record stays intact.
        const { size } = await h.stat();
        if (size > 0) {
          const { buffer } = await h.read(Buffer.alloc(1), 0, 1, size - 1);
          if (buffer[0] !== 10) prefix = '\n';
        }
        this.auditTailChecked = true;
      }
      await h.write(prefix + records.map((r) => `${JSON.stringify(r)}\n`).join(''));
      await h.sync();
    } finally {
      await h.close();
    }
  }

  async readAudit(limit: number): Promise<AuditRead> {
    let text: string;
    try {
      text = await readFile(this.auditPath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], skipped: [] };
      throw e;
    }
    const lines = text.split('\n');
    const skipped: AuditRead['skipped'] = [];
    const records: AuditRecord[] = [];
    const last = lines.length - 1; // after the final '\n' comes '' unless the last line is torn
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line === '' && i === last) continue;
      try {
        records.push(JSON.parse(line) as AuditRecord);
      } catch {
        skipped.push({
          line: i + 1,
          reason: i === last ? 'torn last line (a write was interrupted)' : 'not valid JSON',
        });
      }
    }
    records.reverse();
    return { records: limit > 0 ? records.slice(0, limit) : records, skipped };
  }
}
