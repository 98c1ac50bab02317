/**
 * In-memory stand-ins for unit tests of the reconciler's logic: a key-value
 * "thing" kind whose provider reads and writes a Map, and a state store that
 * keeps everything in memory and records the order of writes. Pure logic
 * only: every end-to-end test uses real files, real Git, real sockets.
 */
import type { AgentEvent } from '../../agent/events.js';
import { silentLogger } from '../../agent/log.js';
import { Reconciler } from '../../agent/reconciler.js';
import type { AuditRecord, PersistedState, StateStore } from '../../agent/state/types.js';
import { seededRandom } from '../../policies/backoff.js';
import { guardrails } from '../policies/fixtures.js';
import type { Freeze } from '../../policies/types.js';
import type {
  ApplyAction,
  ApplyControl,
  ApplyOutcome,
  DesiredResource,
  KindDefinition,
  ObserveResult,
  OwnedDoc,
  Provider,
} from '../../providers/types.js';

/** `kind: Thing`: spec `{value: string}`; the observed value lives in a Map. */
export const thingKind: KindDefinition = {
  kind: 'Thing',
  provider: 'memory',
  validate: () => [],
  toDesired: (spec) => ({ spec: { value: spec['value'] } }),
  removable: () => true,
  disruptive: [],
};

export function thing(name: string, value: string, extra: Partial<DesiredResource> = {}): DesiredResource {
  const spec = { value, ...(extra.spec ?? {}) };
  return {
    key: `Thing/${name}`,
    kind: 'Thing',
    name,
    spec,
    desired: { spec } as OwnedDoc,
    origin: `fleet/${name}.yaml:1:1`,
    ...extra,
  };
}

export class MemoryProvider implements Provider {
  readonly name = 'memory';
  readonly kinds = [thingKind];
  /** Observed specs by resource name; a missing name is an observe error (never "absent"). */
  readonly world = new Map<string, Record<string, unknown>>();
  /** Names whose apply fails. */
  readonly failing = new Set<string>();
  /** Names whose apply reports success but changes nothing (another actor). */
  readonly ignoring = new Set<string>();
  applied: string[] = [];

  async observe(resources: readonly DesiredResource[]): Promise<Map<string, ObserveResult>> {
    const out = new Map<string, ObserveResult>();
    for (const r of resources) {
      const spec = this.world.get(r.name);
      out.set(
        r.key,
        spec
          ? { status: 'present', id: r.name, doc: { spec: { ...spec } } }
          : { status: 'error', id: r.name, error: 'unreadable', code: 'EACCES' },
      );
    }
    return out;
  }

  async apply(actions: readonly ApplyAction[], ctl: ApplyControl): Promise<ApplyOutcome[]> {
    const out: ApplyOutcome[] = [];
    for (const a of actions) {
      if (ctl.shouldStop()) break;
      const name = a.resource.name;
      this.applied.push(name);
      const o: ApplyOutcome = this.failing.has(name)
        ? { key: a.resource.key, id: name, outcome: 'failed', error: 'boom', code: 'EIO' }
        : { key: a.resource.key, id: name, outcome: 'applied' };
      if (o.outcome === 'applied' && !this.ignoring.has(name))
        this.world.set(name, { ...this.world.get(name), ...a.resource.desired.spec });
      out.push(o);
      await ctl.onOutcome(o);
    }
    return out;
  }
}

/** A state store in memory; `writes` records every save and audit append in order. */
export class MemoryStore implements StateStore {
  state: PersistedState | null = null;
  readonly audit: AuditRecord[] = [];
  readonly writes: string[] = [];
  failSave = false;
  /** A shared backend's end of a freeze by its own clock (absent: the files backend's behaviour). */
  endFreeze?: (seen: Freeze) => Promise<boolean>;

  async load(): Promise<PersistedState> {
    throw new Error('not used: the reconciler is handed its state');
  }
  async save(s: PersistedState): Promise<void> {
    if (this.failSave) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    this.state = structuredClone(s);
    this.writes.push('save');
  }
  async appendAudit(records: readonly AuditRecord[]): Promise<void> {
    this.audit.push(...records);
    for (const r of records) this.writes.push(`${r.outcome}:${r.name}`);
  }
  async readAudit(): Promise<{ records: AuditRecord[]; skipped: [] }> {
    return { records: [...this.audit].reverse(), skipped: [] };
  }
}

/**
 * A reconciler over `provider` (kind Thing only) and `store`, on `clock`, in enforce mode, with the fixtures'
 * guardrails plus `overrides`: the wiring the reconciler's unit tests share.
 */
export function thingReconciler(
  provider: Provider,
  store: StateStore,
  clock: { now: number },
  overrides: Parameters<typeof guardrails>[0] = {},
  emit: (e: AgentEvent) => void = () => {},
): Reconciler {
  return new Reconciler({
    kinds: new Map([[thingKind.kind, thingKind]]),
    providers: new Map([['memory', provider]]),
    store,
    guardrails: guardrails(overrides),
    initialMode: 'enforce',
    clock: () => clock.now,
    random: seededRandom(1),
    log: silentLogger,
    emit,
  });
}
