/**
 * What the agent persists, and the narrow interface that stores it. The
 * embedded default keeps files in `state.dir`; a shared backend for several
 * replicas can implement the same interface later.
 */
import type { Static, TSchema } from 'typebox';
import * as Type from 'typebox/type';
import { ModeSchema } from '../../policies/guardrail-config.js';
import {
  type Freeze,
  FreezeSchema,
  type GuardrailConfig,
  type Mode,
  ResourceRecordSchema,
  TokenBucketSchema,
} from '../../policies/types.js';
import type { DisplayOp } from '../patch-view.js';

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
/** A field a version-2 file may lack, having been written before it existed: absent means null. */
const Later = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()], { default: null });

/** An operator's change-window override (policies/windows.ts): audited before it counts. */
export const WindowOverrideSchema = Type.Object(
  { reason: Type.String(), by: Type.String(), since: Type.Number(), until: Type.Number() },
  { additionalProperties: false },
);

/**
 * An operator's `approveRevision`: exempts the drift it approved from the
 * mass-drift halt until that drift has converged, then it is spent.
 */
export const ApprovalSchema = Type.Object(
  {
    sha: Type.String(),
    by: Type.String(),
    at: Type.Number(),
    /**
     * The resources (drift keys) whose drift it approved. Null until bound: at
     * the first cycle on `sha`, to the drift seen then (an approval given while
     * the agent already showed drift on `sha` is bound at once, to that drift).
     */
    keys: Nullable(Type.Array(Type.String())),
  },
  { additionalProperties: false },
);
export type Approval = Static<typeof ApprovalSchema>;

/**
 * The state file's `state` (version 2), checked on load. `revision`, `soak`
 * and `bucket` came later than the rest: absent means null.
 */
export const PersistedStateSchema = Type.Object(
  {
    version: Type.Literal(2),
    /** Null until someone sets it: the config's reconcile.mode applies. */
    mode: Nullable(ModeSchema),
    freeze: Nullable(FreezeSchema),
    /** Open approvals (`approveRevision`), at most one per revision; spent once their drift converged. */
    approvals: Type.Array(ApprovalSchema),
    /** The last revision accepted, restored at start so a bad commit pushed meanwhile cannot replace it. */
    revision: Later(
      Type.Object({ sha: Type.String(), acceptedAt: Type.Number() }, { additionalProperties: false }),
    ),
    soak: Later(
      Type.Object(
        { sha: Type.String(), cyclesObserved: Type.Integer({ minimum: 0 }) },
        { additionalProperties: false },
      ),
    ),
    bucket: Later(TokenBucketSchema),
    /**
     * An operator's change-window override (POST /v1/window-override): the windows count as open until
     * `until`. Absent in files written before it existed, and once it has ended.
     */
    windowOverride: Type.Optional(Nullable(WindowOverrideSchema)),
    resources: Type.Record(Type.String(), ResourceRecordSchema, { additionalProperties: false }),
  },
  { additionalProperties: false },
);
export type PersistedState = Static<typeof PersistedStateSchema>;

export interface AuditRecord {
  at: string;
  revision: string;
  kind: string;
  name: string;
  id: string | null;
  /** The display form of the ops applied (agent/patch-view.ts): never a file's content whole. */
  patch: DisplayOp[];
  /**
   * `started`: the write-ahead intent, durable before the action starts;
   * `applied` / `failed`: its outcome, appended as soon as it is known. A
   * `started` without an outcome is an action a crash cut off, or one that a
   * stop or a failed audit write kept from starting.
   * `window-override`: not an action but an operator opening the change windows (kind `Steward`, name
   * `window-override`, no patch), with `reason`, `by` and `until`; written before the override counts.
   */
  outcome: 'started' | 'applied' | 'failed' | 'window-override';
  /** Links an outcome to its intent (the same in both lines). */
  action?: string;
  error?: string;
  durationMs: number;
  /** Who signed the revision acted on, when source.verify is set (SPEC §10). */
  signer?: string;
  /** `window-override` only: why, who, and until when (ISO 8601). */
  reason?: string;
  by?: string;
  until?: string;
  /** The agent that acted (shared backends, where one audit holds the whole fleet's actions). */
  agent?: string;
}

export interface AuditRead {
  records: AuditRecord[];
  /** Lines that could not be read (e.g. a torn last line after a crash): the file and the byte offset of the line. */
  skipped: Array<{ file: string; offset: number; reason: string }>;
}

export interface StateStore {
  /** Loads the state; a missing store is a fresh state, a corrupt one throws STATE_CORRUPT. */
  load(): Promise<PersistedState>;
  /** Persists the whole state atomically and durably; throws (e.g. ENOSPC) when it cannot. */
  save(state: PersistedState): Promise<void>;
  /** Appends audit records durably (fsync) before returning. */
  appendAudit(records: readonly AuditRecord[]): Promise<void>;
  /** Newest first. */
  readAudit(limit: number): Promise<AuditRead>;
  /**
   * Shared backends: called at the start of every cycle and before every
   * operator change. Writes what only this agent's memory holds (a freeze
   * taken while the backend was down), then returns `state` with the shared
   * fields (freeze, mode, approvals, bucket, soak) as the backend has them
   * NOW. `revision`: the revision a cycle is about to run on (approvals of
   * others it never saw are left alone). Throws when the backend cannot be
   * reached: the caller acts on nothing.
   */
  refresh?(state: PersistedState, revision?: string): Promise<PersistedState>;
  /**
   * Shared backends: the whole write-ahead in ONE transaction that re-reads
   * freeze and mode under a lock: if the fleet is frozen or in observe now it
   * writes nothing (`blocked`); else it takes the tokens from the shared
   * bucket (fewer when fewer are left: `granted`) and makes the first
   * `granted` actions' records and intents durable. Throws when it cannot.
   * Without it, the reconciler writes ahead with `save` and `appendAudit`.
   */
  writeAhead?(req: WriteAheadRequest): Promise<WriteAheadResult>;
  /**
   * Shared backends: whether the fleet is frozen or in observe NOW, asked
   * between the actions of a batch (another agent's freeze stops this one
   * after the action in flight, not at its next cycle). The caller counts a
   * failure as halted.
   */
  actingHalted?(): Promise<boolean>;
  /**
   * Shared backends: the freeze and the mode as they are now, read only (nothing written, no cycle
   * waited for) — what `GET /v1/status` shows, since another agent may have changed them. What `local`
   * changed and the backend does not hold yet (a freeze or observe taken while it was down) is kept: the
   * more cautious view.
   */
  peekShared?(local: PersistedState): Promise<Pick<PersistedState, 'freeze' | 'mode'>>;
  /**
   * Shared backends: lifts `seen` (a freeze with an `until`) if it is still the freeze in force AND its
   * end has passed by the BACKEND's clock; false: not ended there (yet), nothing written. A freeze's end
   * is then the same instant for every agent, not the first moment of the fastest clock in the fleet.
   */
  endFreeze?(seen: Freeze): Promise<boolean>;
  /** Releases connections (shared backends). */
  close?(): Promise<void>;
  /**
   * Stores that keep what they saved in memory: takes `state` as the saved one when it is, by content, what
   * was last loaded or saved (e.g. its records pointed at the revision's documents after a restart), so the
   * copies it replaces can be freed. Writes nothing; false, changing nothing, when anything differs.
   */
  adopt?(state: PersistedState): boolean;
}

/** A write-ahead through {@link StateStore.writeAhead}. */
export interface WriteAheadRequest {
  /** The resource records to make durable, pessimistic for each acted resource (its attempt counted as failed). */
  resources: PersistedState['resources'];
  /** The acted resources' keys, in the decided order; `intents[i]` is the audit intent of `keys[i]`. */
  keys: readonly string[];
  intents: readonly AuditRecord[];
  /** The mode that applies while none is set (the config's reconcile.mode). */
  initialMode: Mode;
  rateLimit: GuardrailConfig['rateLimit'];
  now: number;
}

export type WriteAheadResult =
  /** The first `granted` actions are durable (tokens, records, intents); the rest were not written. */
  | { kind: 'written'; granted: number }
  /** Nothing was written: the fleet is frozen or in observe now (as read under the lock). */
  | { kind: 'blocked'; reason: 'frozen' | 'observe'; freeze: Freeze | null; mode: Mode | null };

export function freshState(): PersistedState {
  return {
    version: 2,
    mode: null,
    freeze: null,
    approvals: [],
    revision: null,
    soak: null,
    bucket: null,
    resources: {},
  };
}
