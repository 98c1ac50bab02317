/**
 * The one interface every provider implements. A provider knows its API and
 * nothing about guardrails: it validates the spec of its kinds, reads observed
 * state fresh (batched where the API allows) and applies changes idempotently.
 */
import type { Operation } from 'fast-json-patch';
import type { PathSegment } from '../core/yaml.js';

/** The owned view of a resource: `{ spec: {...} }` with sets normalised to keyed maps. */
export type OwnedDoc = { spec: Record<string, unknown> };

/** A validation problem inside one manifest's `spec`, located by path. */
export interface SpecProblem {
  path: PathSegment[];
  message: string;
  /** Point at the key itself (unknown keys) rather than at its value. */
  atKey?: boolean;
}

/** A desired resource as read from Git, validated. */
export interface DesiredResource {
  /** `${kind}/${name}` */
  key: string;
  kind: string;
  name: string;
  spec: Readonly<Record<string, unknown>>;
  /** The owned document the spec asks for (normalised). */
  desired: OwnedDoc;
  /** Manifest-level policy: `policy.onDrift`. */
  onDrift?: 'revert' | 'report';
  /** `sensitive: true` in the manifest: no value of it is ever shown, only digests (agent/patch-view.ts). */
  sensitive?: boolean;
  /** Where the manifest is written: `file:line:col`. */
  origin: string;
}

export type ObserveResult =
  /** The resource exists; `doc` is its full observed owned view (the diff projects it). */
  | { status: 'present'; id: string; doc: OwnedDoc }
  /** The resource does not exist. `doc` is how "missing" reads on owned fields (e.g. `{spec:{ensure:'absent'}}`). */
  | { status: 'absent'; id: string | null; doc: OwnedDoc }
  /** Reading failed: never treated as missing. */
  | { status: 'error'; id: string | null; error: string; code: string };

export interface ApplyAction {
  resource: DesiredResource;
  /** Operations to apply (already filtered by field policy), observed → desired. */
  ops: Operation[];
  /** The observed document the ops were computed against. */
  observed: OwnedDoc;
}

export type ApplyOutcome =
  | { key: string; id: string | null; outcome: 'applied'; durationMs?: number }
  | { key: string; id: string | null; outcome: 'failed'; error: string; code: string; durationMs?: number };

export interface ApplyControl {
  shouldStop(): boolean;
  onOutcome(outcome: ApplyOutcome): Promise<void>;
  /**
   * The signal every call for the action on `key` must carry, if any (a shard lease: it fires before the
   * lease expires). A provider starts no call for an action whose signal fired, aborts the calls in flight
   * when it fires, and reports the action failed.
   */
  signal?(key: string): AbortSignal | undefined;
}

export interface KindDefinition {
  kind: string;
  /** The provider that serves this kind (a key of `providers` in the config). */
  provider: string;
  /** Validates a manifest's spec; returns every problem found. */
  validate(spec: unknown): SpecProblem[];
  /** Normalises a valid spec to the owned document it asks for. */
  toDesired(spec: Readonly<Record<string, unknown>>): OwnedDoc;
  /**
   * Whether an owned path that was applied before and is no longer in Git
   * should be removed from the resource (e.g. a tag). Paths for which this is
   * false are simply released (no longer owned) — a file always has a mode.
   */
  removable(path: string): boolean;
  /** Pointers (`/spec/…`) whose change disrupts the resource: `report` unless configured otherwise. */
  disruptive: readonly string[];
  /**
   * Pointers (`/spec/content`) whose string values are contents (a file's
   * bytes): never shown whole outside the provider — a line diff and digests
   * instead (agent/patch-view.ts).
   */
  contentFields?: readonly string[];
  /**
   * Eventual consistency: for this long after a successful apply, reading the
   * old value back is not "did not stick", and the resource is not acted on
   * again. 0 or unset for read-your-writes providers (files).
   */
  settleMs?: number;
  /** Cross-resource checks over the whole revision (e.g. two Files on one path). */
  validateAll?(
    resources: readonly DesiredResource[],
  ): Array<{ key: string; path: PathSegment[]; message: string }>;
}

export interface Provider {
  name: string;
  kinds: readonly KindDefinition[];
  /** Reads observed state fresh for every resource; never throws for one resource's failure. */
  observe(resources: readonly DesiredResource[]): Promise<Map<string, ObserveResult>>;
  /**
   * Set by a provider whose resources are observed independently of each other (no cross-resource check,
   * no call count that grows with the number of calls): detection then calls `observe` with at most this
   * many resources at a time and diffs each batch before the next, so the observed documents of the
   * whole fleet never coexist. Unset: one call with all of the provider's resources.
   */
  observeBatch?: number;
  /**
   * Applies actions; returns one outcome per action started. Must check
   * `ctl.shouldStop()` before each action (or batch) and start no new one
   * once it returns true, and should await `ctl.onOutcome` as soon as each
   * outcome is known, so the audit log is written while the cycle runs.
   */
  apply(actions: readonly ApplyAction[], ctl: ApplyControl): Promise<ApplyOutcome[]>;
}
