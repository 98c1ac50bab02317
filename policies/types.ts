/**
 * The data that guardrail decisions are made from. Everything here is plain
 * data: no clocks, no I/O. Times are epoch milliseconds passed in as `now`.
 */
import type { Operation } from 'fast-json-patch';
import type { Static } from 'typebox';
import * as Type from 'typebox/type';

export type { FieldPolicy, GuardrailConfig, Mode } from './guardrail-config.js';

/** One resource whose observed state differs from its desired state on owned fields. */
export interface Drift {
  /** `${kind}/${name}`: unique within a revision. */
  key: string;
  kind: string;
  name: string;
  /** Provider id of the resource (file path, instance id…), null when it does not exist. */
  id: string | null;
  /** RFC 6902 operations that turn observed into desired, paths like `/spec/content`. */
  patch: Operation[];
}

/** What the agent remembers about one managed resource across cycles (persisted in the state file). */
export const ResourceRecordSchema = Type.Object(
  {
    /** Owned document applied last (three-way diff base). */
    lastApplied: Type.Optional(Type.Unknown()),
    /** When the current drift was first seen; unset while converged. */
    firstSeen: Type.Optional(Type.Number()),
    /** Consecutive apply attempts without convergence (failures and applies that did not stick). */
    attempts: Type.Integer({ minimum: 0 }),
    /** Not before this time may the agent act on it again (backoff). */
    nextAttemptAt: Type.Optional(Type.Number()),
    /** Consecutive cycles in which the resource was acted on and was still drifted afterwards/next cycle. */
    cyclesActedDrifted: Type.Integer({ minimum: 0 }),
    /** A resource_stuck alert is open for it. */
    stuck: Type.Boolean(),
    /**
     * The last cycle applied to it successfully; the next fresh observation
     * decides whether that apply stuck. Persisted, so a restart does not grant
     * an extra, un-backed-off apply.
     */
    verifyPending: Type.Optional(Type.Boolean()),
    /** When the last successful apply happened (for the kind's settle window). */
    appliedAt: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
);
export type ResourceRecord = Static<typeof ResourceRecordSchema>;

export const FreezeSchema = Type.Object(
  {
    reason: Type.String(),
    by: Type.String(),
    since: Type.Number(),
    /** When it ends by itself (ms); null or absent (a freeze written before it existed): only an unfreeze ends it. */
    until: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
  },
  { additionalProperties: false },
);
export type Freeze = Static<typeof FreezeSchema>;

export const TokenBucketSchema = Type.Object(
  { tokens: Type.Number(), updatedAt: Type.Number() },
  { additionalProperties: false },
);
export type TokenBucket = Static<typeof TokenBucketSchema>;
