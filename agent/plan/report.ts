/**
 * The plan of one revision: for each drifted resource, what the agent would do
 * (create, update, delete, or only report it) and, when it would not act in
 * its next cycle, why — computed by the very functions a cycle uses
 * (policies/fold.ts, policies/soak.ts, policies/decide.ts), on a read-only
 * copy of the persisted state. Pure: no I/O, no clock (`now` is passed in).
 *
 * A hold reason is whatever `decide` says, passed through as a string: a
 * reason added to decide shows up in every plan format without a change here.
 */
import jsonpatch from 'fast-json-patch';
import { decide, revertOps } from '../../policies/decide.js';
import { foldObservation } from '../../policies/fold.js';
import { soakStep } from '../../policies/soak.js';
import type { GuardrailConfig, Mode, ResourceRecord } from '../../policies/types.js';
import type { KindDefinition, OwnedDoc } from '../../providers/types.js';
import type { Detection } from '../detect.js';
import { type Digest, type DisplayOp, displayPatchOf } from '../patch-view.js';
import { toDecideDrift } from '../reconciler.js';
import type { PersistedState } from '../state/types.js';

/** What a drift is: the agent creates, changes or deletes the resource to revert it. */
export type ChangeKind = 'create' | 'update' | 'delete';
/** What the agent would do with it: the change, or nothing ever (`report-only`). */
export type PlanAction = ChangeKind | 'report-only';

/** One changed field, as it may be shown: values only when neither sensitive nor file content. */
export interface PlanChange {
  op: DisplayOp['op'];
  /** The JSON pointer (`/spec/ingress/0/cidr`). */
  path: string;
  /** The same as people write it (`spec.ingress[0].cidr`). */
  field: string;
  /** The observed value (absent: none, or not shown). */
  before?: unknown;
  /** The desired value (absent: none, or not shown). */
  after?: unknown;
  /** Digests instead of values: file contents, and every field of a `sensitive: true` resource. */
  digests?: { before: Digest | null; after: Digest | null };
  /** The unified line diff of file contents (not for sensitive resources, nor when too large). */
  diff?: string;
  /** Field policy says `report`: the agent never reverts this field. */
  reportOnly: boolean;
}

export interface PlanResource {
  kind: string;
  name: string;
  id: string | null;
  /** The display patch, exactly as `/v1/drift` shows it. */
  patch: DisplayOp[];
  /** `sensitive: true` in the manifest: its changes carry digests only. */
  sensitive: boolean;
  change: ChangeKind;
  action: PlanAction;
  /** Why the agent would not act on it in its next cycle (decide's hold reason), or null: it would. */
  held: string | null;
  changes: PlanChange[];
}

export interface PlanSummary {
  create: number;
  update: number;
  delete: number;
  reportOnly: number;
  /** Held resources by reason (report-only drift not included: it is counted above). */
  held: Record<string, number>;
  unreadable: number;
}

export interface PlanReport {
  managed: number;
  mode: Mode;
  frozen: boolean;
  soaking: boolean;
  /** Set when the next cycle would freeze the agent (the mass-drift halt): why. */
  wouldFreeze: string | null;
  resources: PlanResource[];
  errors: Array<{ kind: string; name: string; id: string | null; code: string; error: string }>;
  summary: PlanSummary;
  /** Exit code per SPEC §12: 1 unreadable resources, 2 drift the agent would revert (held or not), else 0. */
  exitCode: 0 | 1 | 2;
}

export interface PlanInput {
  sha: string;
  detection: Detection;
  /** The persisted state (read-only), or a fresh one. */
  state: PersistedState;
  guardrails: GuardrailConfig;
  /** reconcile.mode: the mode while the state names none. */
  initialMode: Mode;
  kinds: ReadonlyMap<string, KindDefinition>;
  now: number;
  /**
   * The change windows' verdict at `now` (policies/windows.ts), handed to decide as the cycle hands it;
   * absent: no windows.
   */
  window?: { readonly open: boolean };
}

/** The hold reason of a drift the agent will never act on (decide's field-policy step). */
const REPORT_ONLY = 'report-only';

/** Builds the plan: the next cycle's fold → soak → decide, on copies; nothing is persisted. */
export function planReport(input: PlanInput): PlanReport {
  const { detection, state, guardrails, kinds, now } = input;
  const mode = state.mode ?? input.initialMode;
  const before = new Map<string, ResourceRecord>(Object.entries(state.resources));
  // Only the drift's records: decide reads no other (what converged would only be recorded as converged).
  const { records } = foldObservation({
    converged: [],
    drifted: detection.drift.map((d) => ({
      key: d.resource.key,
      desired: d.resource.desired,
      settleMs: kinds.get(d.resource.kind)?.settleMs ?? 0,
    })),
    records: before,
    now,
    config: { alertAfterCycles: guardrails.nonConvergence.alertAfterCycles, backoff: guardrails.backoff },
    random: () => 0.5, // only the jitter of a backoff the fold schedules; it never changes a hold
  });
  const soaking = soakStep(state.soak, input.sha, guardrails.soak.observeCycles).soaking;
  const drift = detection.drift.map((d) => toDecideDrift(d, kinds));
  // The approval of this revision exempts the drift it is bound to (all of it while still unbound).
  const approval = state.approvals.find((a) => a.sha === input.sha);
  const decision = decide({
    now,
    mode,
    freeze: state.freeze,
    revision: {
      sha: input.sha,
      approvedKeys: approval ? new Set(approval.keys ?? drift.map((d) => d.key)) : null,
      soaking,
    },
    managed: detection.managed,
    drift,
    records,
    bucket: state.bucket,
    config: guardrails,
    ...(input.window ? { window: input.window } : {}),
  });
  const held = new Map<string, string>(decision.hold.map((h) => [h.drift.key, h.reason]));

  const resources = drift.map((d): PlanResource => {
    const { resource, observed } = d.detected;
    const patch = displayPatchOf(kinds, resource, d.patch, observed);
    const revert = new Set(revertOps(d, guardrails));
    const reason = held.get(d.key) ?? null;
    const change = changeKind(d.patch, observed);
    return {
      kind: d.kind,
      name: d.name,
      id: d.id,
      patch,
      sensitive: resource.sensitive === true,
      change,
      action: reason === REPORT_ONLY ? 'report-only' : change,
      held: reason === REPORT_ONLY ? null : reason,
      changes: patch.map((op, i) =>
        toChange(op, observed, !revert.has(d.patch[i]!), kinds.get(d.kind)?.contentFields ?? []),
      ),
    };
  });
  const errors = detection.errors.map((e) => ({
    kind: e.resource.kind,
    name: e.resource.name,
    id: e.id,
    code: e.code,
    error: e.error,
  }));
  const summary = summarise(resources, errors.length);
  const wouldChange = resources.some((r) => r.action !== 'report-only');
  return {
    managed: detection.managed,
    mode,
    frozen: state.freeze !== null,
    soaking,
    wouldFreeze: decision.freeze?.reason ?? null,
    resources,
    errors,
    summary,
    exitCode: errors.length > 0 ? 1 : wouldChange ? 2 : 0,
  };
}

/**
 * Creating and deleting are drift on `/spec/ensure` (a missing resource reads `ensure: absent`):
 * towards `absent` deletes, from `absent` creates; anything else updates.
 */
function changeKind(patch: ReadonlyArray<{ op: string; path: string; value?: unknown }>, observed: OwnedDoc) {
  const ensure = patch.find((op) => op.path === '/spec/ensure' && op.op !== 'remove');
  if (ensure?.value === 'absent') return 'delete';
  if (ensure !== undefined && observed.spec['ensure'] === 'absent') return 'create';
  return 'update';
}

function toChange(
  op: DisplayOp,
  observed: OwnedDoc,
  reportOnly: boolean,
  contentFields: readonly string[],
): PlanChange {
  const out: PlanChange = { op: op.op, path: op.path, field: fieldName(op.path), reportOnly };
  if ('before' in op) {
    // A DigestOp: file contents, or any field of a sensitive resource. Its value is never read here.
    out.digests = { before: op.before, after: op.after };
    if (op.diff !== undefined) out.diff = op.diff;
    return out;
  }
  if (op.op === 'replace' || op.op === 'remove') {
    const old = valueAt(observed, op.path, contentFields);
    if (old !== undefined) out.before = old;
  }
  if ('value' in op) out.after = op.value;
  return out;
}

/**
 * The observed value at a pointer. Only reached for ops patch-view left plain (not sensitive, not a
 * content field); a value with a content field below it (`replace /spec` whole) is not shown at all.
 */
function valueAt(doc: OwnedDoc, pointer: string, contentFields: readonly string[]): unknown {
  if (contentFields.some((f) => f.startsWith(`${pointer}/`))) return undefined;
  try {
    return jsonpatch.getValueByPointer(doc, pointer) as unknown;
  } catch {
    return undefined;
  }
}

/** `/spec/ingress/0/cidr` → `spec.ingress[0].cidr`; keys that are not names are quoted. */
export function fieldName(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

function summarise(resources: readonly PlanResource[], unreadable: number): PlanSummary {
  const s: PlanSummary = { create: 0, update: 0, delete: 0, reportOnly: 0, held: {}, unreadable };
  for (const r of resources) {
    if (r.action === 'report-only') s.reportOnly++;
    else s[r.action]++;
    if (r.held !== null) s.held[r.held] = (s.held[r.held] ?? 0) + 1;
  }
  return s;
}
