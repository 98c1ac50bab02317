/**
 * The data that guardrail decisions are made from. Everything here is plain
 * data: no clocks, no I/O. Times are epoch milliseconds passed in as `now`.
 */
import type { Operation } from 'fast-json-patch';

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

/** What the agent remembers about one managed resource across cycles. */
export interface ResourceRecord {
  /** Owned document applied last (three-way diff base). */
  lastApplied?: unknown;
  /** When the current drift was first seen; unset while converged. */
  firstSeen?: number;
  /** Consecutive apply attempts without convergence (failures and applies that did not stick). */
  attempts: number;
  /** Not before this time may the agent act on it again (backoff). */
  nextAttemptAt?: number;
  /** Consecutive cycles in which the resource was acted on and was still drifted afterwards/next cycle. */
  cyclesActedDrifted: number;
  /** A resource_stuck alert is open for it. */
  stuck: boolean;
  /**
   * The last cycle applied to it successfully; the next fresh observation
   * decides whether that apply stuck. Persisted, so a restart does not grant
   * an extra, un-backed-off apply.
   */
  verifyPending?: boolean;
  /** When the last successful apply happened (for the kind's settle window). */
  appliedAt?: number;
}

export interface Freeze {
  reason: string;
  by: string;
  since: number;
}

export interface TokenBucket {
  tokens: number;
  updatedAt: number;
}
