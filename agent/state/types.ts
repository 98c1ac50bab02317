/**
 * What the agent persists, and the narrow interface that stores it. The
 * embedded default keeps files in `state.dir`; a shared backend for several
 * replicas can implement the same interface later.
 */
import type { Operation } from 'fast-json-patch';
import type { Freeze, Mode, ResourceRecord, TokenBucket } from '../../policies/types.js';

export interface PersistedState {
  version: 1;
  /** Null until someone sets it: the config's reconcile.mode applies. */
  mode: Mode | null;
  freeze: Freeze | null;
  /** Revisions exempted from the mass-drift halt by `approveRevision`. */
  approvals: string[];
  /** The last revision accepted, restored at start so a bad commit pushed meanwhile cannot replace it. */
  revision: { sha: string; acceptedAt: number } | null;
  soak: { sha: string; cyclesObserved: number } | null;
  bucket: TokenBucket | null;
  resources: Record<string, ResourceRecord>;
}

export interface AuditRecord {
  at: string;
  revision: string;
  kind: string;
  name: string;
  id: string | null;
  patch: Operation[];
  outcome: 'applied' | 'failed';
  error?: string;
  durationMs: number;
}

export interface AuditRead {
  records: AuditRecord[];
  /** Lines that could not be read (e.g. a torn last line after a crash): the file and the byte offset of the line. */
  skipped: Array<{ file: string; offset: number; reason: string }>;
}

export interface StateStore {
  /** Loads the state; a missing store is a fresh state, a corrupt one throws STATE_CORRUPT. */
  load(): Promise<PersistedState>;
  /** Persists the whole state atomically and durably. */
  save(state: PersistedState): Promise<void>;
  /** Appends audit records durably (fsync) before returning. */
  appendAudit(records: readonly AuditRecord[]): Promise<void>;
  /** Newest first. */
  readAudit(limit: number): Promise<AuditRead>;
}

export function freshState(): PersistedState {
  return {
    version: 1,
    mode: null,
    freeze: null,
    approvals: [],
    revision: null,
    soak: null,
    bucket: null,
    resources: {},
  };
}
