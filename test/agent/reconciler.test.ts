/**
 * `Reconciler.cycle` as a table: one row per hold reason and per outcome, on
 * an in-memory provider and store (pure logic; the loop end to end runs on
 * real files in test/e2e). Each row sets up a world and a state, runs one
 * cycle, and names what must come out: what was applied, what was held and
 * why, the outcome counts, the events.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AgentEvent } from '../../agent/events.js';
import { silentLogger } from '../../agent/log.js';
import { type CycleReport, MASS_DRIFT_ACTOR, Reconciler } from '../../agent/reconciler.js';
import type { Revision } from '../../agent/source/source.js';
import { freshState, type PersistedState } from '../../agent/state/types.js';
import { seededRandom } from '../../policies/backoff.js';
import type { GuardrailConfig } from '../../policies/types.js';
import type { ChangeWindow } from '../../policies/windows.js';
import { guardrails } from '../policies/fixtures.js';
import { MemoryProvider, MemoryStore, thing, thingKind } from '../helpers/memory.js';

const NOW = Date.UTC(2026, 0, 1);
const SHA = 'a'.repeat(40);
const NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];

interface Row {
  name: string;
  /** Names drifted at the start (observed "old", desired "new"); the rest are converged. */
  drifted: string[];
  state?: (s: PersistedState) => PersistedState;
  config?: Partial<GuardrailConfig>;
  world?: (p: MemoryProvider, s: MemoryStore) => void;
  initialMode?: 'observe' | 'enforce';
  windows?: ChangeWindow[];
  /** More to check once the cycle ran. */
  check?: (c: {
    report: CycleReport;
    events: AgentEvent[];
    state: PersistedState;
    store: MemoryStore;
  }) => void;
  expect: {
    applied: string[];
    held?: CycleReport['held'];
    failed?: number;
    events?: AgentEvent['type'][];
    stateError?: boolean;
  };
}

const LOOSE = guardrails({
  soak: { observeCycles: 0 },
  rateLimit: { actionsPerMinute: 600, burst: 100 },
  massDrift: { maxDrifted: 50, maxDriftedPercent: 30, minManaged: 5 },
});
const frozen = (s: PersistedState): PersistedState => ({
  ...s,
  freeze: { reason: 'incident', by: 'alice', since: NOW - 1 },
});

/** A deny window that started at NOW (00:00 UTC daily) and lasts an hour: closed now. */
const DENY_NOW: ChangeWindow = {
  kind: 'deny',
  schedule: '0 0 * * *',
  durationMs: 3_600_000,
  timezone: 'UTC',
};
const frozenUntil =
  (until: number, by = 'alice') =>
  (s: PersistedState): PersistedState => ({
    ...s,
    freeze: { reason: 'deploy', by, since: NOW - 60_000, until },
  });
const overrideUntil =
  (until: number) =>
  (s: PersistedState): PersistedState => ({
    ...s,
    windowOverride: { reason: 'hotfix', by: 'bob', since: NOW - 60_000, until },
  });

const rows: Row[] = [
  { name: 'nothing drifted: nothing applied', drifted: [], expect: { applied: [] } },
  { name: 'two drifted: both applied', drifted: ['a', 'b'], expect: { applied: ['a', 'b'] } },
  {
    name: 'frozen → held frozen',
    drifted: ['a'],
    state: frozen,
    expect: { applied: [], held: { frozen: 1 } },
  },
  {
    name: 'observe mode → held observe',
    drifted: ['a'],
    initialMode: 'observe',
    expect: { applied: [], held: { observe: 1 } },
  },
  {
    name: 'a new revision soaks → held soak',
    drifted: ['a'],
    config: { soak: { observeCycles: 1 } },
    expect: { applied: [], held: { soak: 1 } },
  },
  {
    name: 'a field the config reports only → held report-only',
    drifted: ['a'],
    config: { fieldPolicy: { Thing: { '/spec/value': 'report' } } },
    expect: { applied: [], held: { 'report-only': 1 } },
  },
  {
    name: 'in backoff → held backoff',
    drifted: ['a'],
    state: (s) => ({
      ...s,
      resources: {
        'Thing/a': { attempts: 1, cyclesActedDrifted: 1, stuck: false, nextAttemptAt: NOW + 60_000 },
      },
    }),
    expect: { applied: [], held: { backoff: 1 } },
  },
  {
    name: 'the bucket is empty → held rate-limit',
    drifted: ['a', 'b'],
    state: (s) => ({ ...s, bucket: { tokens: 1, updatedAt: NOW } }),
    expect: { applied: ['a'], held: { 'rate-limit': 1 } },
  },
  {
    name: 'beyond the cap → held cap, oldest first',
    drifted: ['a', 'b', 'c'],
    config: { maxActionsPerCycle: 1 },
    state: (s) => ({
      ...s,
      resources: { 'Thing/c': { attempts: 0, cyclesActedDrifted: 0, stuck: false, firstSeen: NOW - 5000 } },
    }),
    expect: { applied: ['c'], held: { cap: 2 } },
  },
  {
    name: 'mass drift → held mass-drift, frozen, one event',
    drifted: ['a', 'b', 'c', 'd'],
    expect: { applied: [], held: { 'mass-drift': 4 }, events: ['mass_drift_frozen'] },
  },
  {
    name: 'the write-ahead cannot be written → held state-unwritable',
    drifted: ['a'],
    world: (_p, s) => {
      s.failSave = true;
    },
    expect: { applied: [], held: { 'state-unwritable': 1 }, stateError: true },
  },
  {
    name: 'an apply fails → failed, backoff scheduled',
    drifted: ['a', 'b'],
    world: (p) => p.failing.add('a'),
    expect: { applied: ['a', 'b'], failed: 1 },
  },
  {
    name: 'an apply that did not stick (3rd time) → stuck event, backoff',
    drifted: ['a'],
    state: (s) => ({
      ...s,
      resources: {
        'Thing/a': {
          attempts: 2,
          cyclesActedDrifted: 2,
          stuck: false,
          verifyPending: true,
          lastApplied: { spec: { value: 'a new' } },
          firstSeen: NOW - 100_000,
        },
      },
    }),
    expect: { applied: [], held: { backoff: 1 }, events: ['resource_stuck'] },
  },
  {
    name: 'a stuck resource converges → recovered event',
    drifted: [],
    state: (s) => ({
      ...s,
      resources: { 'Thing/a': { attempts: 3, cyclesActedDrifted: 3, stuck: true, firstSeen: NOW - 100_000 } },
    }),
    expect: { applied: [], events: ['resource_recovered'] },
  },
  {
    name: 'a resource no longer in Git → released, not touched',
    drifted: [],
    state: (s) => ({
      ...s,
      resources: { 'Thing/gone': { attempts: 0, cyclesActedDrifted: 0, stuck: false } },
    }),
    expect: { applied: [], events: ['resource_released'] },
  },
  {
    name: 'inside a deny window → held window, the drift still reported',
    drifted: ['a'],
    windows: [DENY_NOW],
    expect: { applied: [], held: { window: 1 } },
    check: ({ report }) => {
      assert.equal(report.window.open, false);
      assert.equal(report.window.until, NOW + 3_600_000);
      assert.deepEqual(
        report.drift.map((d) => [d.name, d.held]),
        [['a', 'window']],
      );
    },
  },
  {
    name: 'inside a deny window, mass drift still freezes',
    drifted: ['a', 'b', 'c', 'd'],
    windows: [DENY_NOW],
    expect: { applied: [], held: { 'mass-drift': 4 }, events: ['mass_drift_frozen'] },
  },
  {
    name: 'a live window override → acts',
    drifted: ['a'],
    windows: [DENY_NOW],
    state: overrideUntil(NOW + 60_000),
    expect: { applied: ['a'] },
    check: ({ report }) => assert.equal(report.window.overridden, true),
  },
  {
    name: 'a window override never lifts a freeze → held frozen',
    drifted: ['a'],
    windows: [DENY_NOW],
    state: (s) => overrideUntil(NOW + 60_000)(frozen(s)),
    expect: { applied: [], held: { frozen: 1 } },
  },
  {
    name: 'a window override past its end → held window, the override written away',
    drifted: ['a'],
    windows: [DENY_NOW],
    state: overrideUntil(NOW),
    expect: { applied: [], held: { window: 1 }, events: ['window_override_ended'] },
    check: ({ state }) => assert.equal(state.windowOverride ?? null, null),
  },
  {
    name: 'a freeze before its until → held frozen',
    drifted: ['a'],
    state: frozenUntil(NOW + 1),
    expect: { applied: [], held: { frozen: 1 } },
  },
  {
    name: 'a freeze at its until → unfrozen by expiry (persisted first), then acts',
    drifted: ['a'],
    state: frozenUntil(NOW),
    expect: { applied: ['a'], events: ['unfrozen'] },
    check: ({ events, store, state }) => {
      assert.deepEqual(events[0], { type: 'unfrozen', by: 'expiry', approveRevision: null });
      assert.equal(state.freeze, null);
      assert.equal(store.writes[0], 'save', 'the expiry is written before anything else');
      assert.deepEqual(state.approvals, [], 'an expiry approves nothing');
    },
  },
  {
    name: 'a freeze past its until that cannot be persisted → stays frozen, nothing applied',
    drifted: ['a'],
    state: frozenUntil(NOW - 1),
    world: (_p, s) => {
      s.failSave = true;
    },
    expect: { applied: [], held: { frozen: 1 }, stateError: true },
    check: ({ report, state }) => {
      assert.equal(report.frozen, true);
      assert.notEqual(state.freeze, null);
    },
  },
  {
    name: 'a freeze past its until by this clock, not yet by the shared backend’s → stays frozen, nothing applied',
    drifted: ['a'],
    state: frozenUntil(NOW - 1),
    world: (_p, s) => {
      s.endFreeze = async () => false; // the fleet's database: its clock says the freeze has not ended
    },
    expect: { applied: [], held: { frozen: 1 } },
    check: ({ state, store }) => {
      assert.notEqual(state.freeze, null);
      assert.notEqual(store.state?.freeze ?? null, null, 'the saved state is still frozen');
    },
  },
  {
    name: 'the mass-drift halt’s freeze never expires, whatever its record says',
    drifted: ['a'],
    state: frozenUntil(NOW - 1, MASS_DRIFT_ACTOR),
    expect: { applied: [], held: { frozen: 1 } },
  },
  {
    name: 'a freeze that expires into mass drift → the halt freezes at once',
    drifted: ['a', 'b', 'c', 'd'],
    state: frozenUntil(NOW - 1),
    expect: { applied: [], held: { 'mass-drift': 4 }, events: ['unfrozen', 'mass_drift_frozen'] },
  },
  {
    name: 'a freeze that expires inside a deny window → held window',
    drifted: ['a'],
    windows: [DENY_NOW],
    state: frozenUntil(NOW - 1),
    expect: { applied: [], held: { window: 1 }, events: ['unfrozen'] },
  },
  {
    name: 'an unreadable resource → an observe error, never acted on',
    drifted: ['a'],
    world: (p) => p.world.delete('b'),
    expect: { applied: ['a'] },
  },
];

describe('Reconciler.cycle: one row per hold reason and outcome', () => {
  for (const row of rows) {
    it(row.name, async () => {
      const provider = new MemoryProvider();
      const store = new MemoryStore();
      for (const n of NAMES)
        provider.world.set(n, { value: row.drifted.includes(n) ? `${n} old` : `${n} new` });
      row.world?.(provider, store);
      const events: AgentEvent[] = [];
      const reconciler = new Reconciler({
        kinds: new Map([[thingKind.kind, thingKind]]),
        providers: new Map([['memory', provider]]),
        store,
        guardrails: { ...LOOSE, ...row.config },
        initialMode: row.initialMode ?? 'enforce',
        clock: () => NOW,
        random: seededRandom(1),
        log: silentLogger,
        emit: (e) => events.push(e),
        windows: row.windows ?? [],
      });
      const resources = NAMES.map((n) => thing(n, `${n} new`));
      const revision: Revision = { sha: SHA, fetchedAt: NOW, resources };
      const base = { ...freshState(), mode: row.initialMode ?? null };
      const state = row.state ? row.state(base) : base;
      const { report, state: after } = await reconciler.cycle(revision, state, () => false);

      assert.deepEqual(provider.applied.sort(), [...row.expect.applied].sort(), 'applied');
      assert.deepEqual(report.held, row.expect.held ?? {}, 'held');
      assert.equal(report.failed, row.expect.failed ?? 0, 'failed');
      assert.equal(report.applied, row.expect.applied.length - (row.expect.failed ?? 0), 'applied count');
      assert.deepEqual(
        events.map((e) => e.type).filter((t) => t !== 'approval_spent'),
        row.expect.events ?? [],
        'events',
      );
      assert.equal(report.stateError !== null, row.expect.stateError ?? false, 'stateError');
      // Whatever ran was written ahead: an intent per action before the first outcome.
      const intents = store.audit.filter((a) => a.outcome === 'started').map((a) => a.name);
      assert.deepEqual(intents.sort(), [...provider.applied].sort(), 'an intent per action');
      if (provider.applied.length > 0) assert.equal(store.writes[0], 'save', 'the state is written ahead');
      row.check?.({ report, events, state: after, store });
    });
  }
});

describe('Reconciler.cycle: approvals are spent resource by resource', () => {
  it('a resource that converged leaves the approval: a later tamper of it counts again, even while another still fails', async () => {
    const provider = new MemoryProvider();
    const store = new MemoryStore();
    const events: AgentEvent[] = [];
    const reconciler = new Reconciler({
      kinds: new Map([[thingKind.kind, thingKind]]),
      providers: new Map([['memory', provider]]),
      store,
      guardrails: LOOSE,
      initialMode: 'enforce',
      clock: () => NOW,
      random: seededRandom(1),
      log: silentLogger,
      emit: (e) => events.push(e),
    });
    const approved = ['a', 'b', 'c', 'd', 'e'];
    for (const n of NAMES) provider.world.set(n, { value: approved.includes(n) ? `${n} old` : `${n} new` });
    provider.failing.add('a'); // one approved resource never converges
    const revision: Revision = {
      sha: SHA,
      fetchedAt: NOW,
      resources: NAMES.map((n) => thing(n, `${n} new`)),
    };
    let state: PersistedState = {
      ...freshState(),
      approvals: [{ sha: SHA, by: 'bob', at: NOW, keys: approved.map((n) => `Thing/${n}`) }],
    };
    // The approved change rolls out (5 of 10 would trip the halt without the approval); a keeps failing.
    state = (await reconciler.cycle(revision, state, () => false)).state;
    assert.equal(state.freeze, null);
    state = {
      ...state,
      resources: Object.fromEntries(
        Object.entries(state.resources).map(([k, r]) => [k, { ...r, nextAttemptAt: undefined }]),
      ),
    };
    state = (await reconciler.cycle(revision, state, () => false)).state;
    assert.deepEqual(state.approvals[0]?.keys, ['Thing/a'], 'only the one still drifting stays approved');
    // b..e are rewritten by hand: 4 of 10 (plus a) is mass drift again.
    provider.applied = [];
    for (const n of ['b', 'c', 'd', 'e']) provider.world.set(n, { value: 'tampered' });
    const r = await reconciler.cycle(revision, state, () => false);
    assert.equal(r.report.frozen, true);
    assert.deepEqual(provider.applied, []);
  });
});
