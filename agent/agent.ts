/**
 * The daemon: polls the source, schedules cycles, owns the persisted state.
 *
 * Triggers: level (every reconcile.interval) and edge (a new revision, or an
 * explicit `trigger()` from the admin API or a push webhook). At most one
 * cycle runs; triggers that arrive during it coalesce into ONE follow-up.
 */
import type { GuardrailConfig, Mode } from '../policies/types.js';
import { shareBases } from '../policies/fold.js';
import { type ChangeWindow, type WindowOverride, type WindowVerdict, windowAt } from '../policies/windows.js';
import { MAX_TIMER_MS } from '../core/duration.js';
import type { KindDefinition, Provider } from '../providers/types.js';
import { errorMessage, isStewardError, StewardError } from '../core/errors.js';
import type { AgentEvent, EventSink } from './events.js';
import { HealthRunner } from './health/runner.js';
import type { HealthCheckResult, HealthCheckSpec, HealthSource } from './health/types.js';
import type { RolloutGateFn } from './fleet/rollout-gate.js';
import type { Logger } from './log.js';
import { type CycleReport, MASS_DRIFT_ACTOR, Reconciler } from './reconciler.js';
import type { DesiredStateSource, PollOutcome } from './source/source.js';
import type { Approval, AuditRecord, PersistedState, StateStore } from './state/types.js';
import type { ShardStatus, Shards } from './fleet/fence.js';

export interface AgentOptions {
  source: DesiredStateSource;
  kinds: ReadonlyMap<string, KindDefinition>;
  providers: ReadonlyMap<string, Provider>;
  store: StateStore;
  guardrails: GuardrailConfig;
  initialMode: Mode;
  sourceIntervalMs: number;
  reconcileIntervalMs: number;
  log: Logger;
  clock?: () => number;
  random?: () => number;
  onEvent?: EventSink;
  /** fleet.shards: leases and the fence for shared kinds (agent/fleet/fence.ts). */
  shards?: Shards | null;
  /** fleet.rollout with a shared backend: whether this agent's wave is open for a revision. */
  gate?: RolloutGateFn;
  /** The config file (named in the hints of the status, logs and alerts). */
  configFile?: string;
  /** Health checks (agent config `health:`): run alongside the loop, reported, never a reason to act or hold. */
  health?: readonly HealthCheckSpec[];
  /** Change windows (SPEC §12); none: always open. */
  windows?: readonly ChangeWindow[];
}

/** When a freeze or a window override ends: at a time (ms), or a duration after it starts; null: no end. */
export type RequestedEnd = { until: number } | { forMs: number } | null;

/** The later of two freeze ends; null (no end) is later than any. */
function laterEnd(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : Math.max(a, b);
}

/** The end's time for something that starts at `since`. */
function endTime(end: RequestedEnd, since: number): number | null {
  return end === null ? null : 'until' in end ? end.until : since + end.forMs;
}

/** How soon to ask again when a freeze is over by this agent's clock but not by the shared backend's. */
const EXPIRY_RETRY_MS = 1_000;

/** How long `GET /v1/status` waits for the fleet's freeze and mode before it shows this agent's own. */
const STATUS_PEEK_MS = 1_000;

export class Agent {
  private state: PersistedState | null = null;
  private readonly reconciler: Reconciler;
  private readonly clock: () => number;
  private running: Promise<void> | null = null;
  private pending = false;
  private stopRequested = false;
  private timers: NodeJS.Timeout[] = [];
  /** Fires when the freeze or the window override ends by itself (re-armed on every change). */
  private expiryTimer: NodeJS.Timeout | null = null;
  private polling: Promise<PollOutcome> | null = null;
  private readonly refreshing = new Set<Promise<void>>();
  private sourceDown = false;
  /**
   * Freeze / observe requests not yet landed: no action starts meanwhile, in the cycle in flight or in one
   * queued ahead of them (counted down once each has landed; the state gates every cycle after that).
   */
  private haltActions = 0;
  /** Serialises cycles and state changes: nothing may read-modify-write the state concurrently. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners: EventSink[] = [];
  private readonly cycleListeners: Array<(r: CycleReport) => void> = [];
  private readonly pollListeners: Array<(o: PollOutcome) => void> = [];
  private readonly healthListeners: Array<(r: HealthCheckResult) => void> = [];
  private readonly healthRunner: HealthRunner;
  /** When the cycle in flight started (null while idle): a wedged loop shows in /healthz. */
  cycleStartedAt: number | null = null;
  /** The last completed cycle, and the number of cycles run. */
  lastCycle: CycleReport | null = null;
  cycles = 0;
  /** When a cycle last completed on a good revision (readiness). */
  lastGoodCycleAt: number | null = null;
  lastCycleError: string | null = null;
  /** Why the last state or audit write failed, while it has not succeeded since (null: writable). */
  private stateError: string | null = null;
  private observeFailing = false;
  /** What the last warnings said (held cycles, observe errors): a warning repeats only when it changes. */
  private heldWarned: string | null = null;
  private observeWarned = '';

  constructor(private readonly opts: AgentOptions) {
    this.clock = opts.clock ?? Date.now;
    if (opts.onEvent) this.listeners.push(opts.onEvent);
    this.reconciler = new Reconciler({
      kinds: opts.kinds,
      providers: opts.providers,
      store: opts.store,
      guardrails: opts.guardrails,
      initialMode: opts.initialMode,
      clock: this.clock,
      random: opts.random ?? Math.random,
      log: opts.log,
      emit: (e) => this.emit(e),
      windows: opts.windows ?? [],
      configFile: opts.configFile ?? null,
      ...(opts.gate ? { gate: opts.gate } : {}),
      fence: opts.shards?.fence,
    });
    this.healthRunner = new HealthRunner({
      checks: opts.health ?? [],
      log: opts.log,
      clock: this.clock,
      onResult: (r) => this.notify(this.healthListeners, r),
      onTransition: (t) => this.emit(t), // a warning log line and an alert, once per transition
    });
  }

  /** The latest health (SPEC §11): what the status view, the metrics and the rollout read. */
  get health(): HealthSource {
    return this.healthRunner;
  }

  /** The configured health checks. */
  get healthChecks(): readonly HealthCheckSpec[] {
    return this.healthRunner.checks;
  }

  /** Starts the health checks (idempotent; `start()` does too). They run even when cycles are driven by hand. */
  startHealth(): void {
    this.healthRunner.start();
  }

  /** Called after every run of a health check (metrics). */
  onHealthResult(fn: (r: HealthCheckResult) => void): void {
    this.healthListeners.push(fn);
  }

  /** Takes this agent's shards (fleet.shards) and starts renewing them; a no-op without shards. */
  async startShards(): Promise<void> {
    await this.opts.shards?.start();
  }

  /** The shards held, with their epochs (null without fleet.shards). */
  get shards(): ShardStatus | null {
    return this.opts.shards?.fence.status() ?? null;
  }

  onEvent(sink: EventSink): void {
    this.listeners.push(sink);
  }

  /** Called after every completed cycle (metrics). */
  onCycle(fn: (r: CycleReport) => void): void {
    this.cycleListeners.push(fn);
  }

  /** Called after every poll, not only on transitions (metrics). */
  onPollOutcome(fn: (o: PollOutcome) => void): void {
    this.pollListeners.push(fn);
  }

  private notify<T>(fns: Array<(x: T) => void>, x: T): void {
    for (const f of fns) {
      try {
        f(x);
      } catch (err) {
        this.opts.log.error({ err: errorMessage(err) }, 'listener failed');
      }
    }
  }

  get stopping(): boolean {
    return this.stopRequested;
  }

  private emit(e: AgentEvent): void {
    const level =
      e.type === 'resource_released' || e.type === 'revision_accepted' || e.type === 'source_recovered'
        ? 'info'
        : 'warn';
    // A freeze by the halt says in its log line what to run (the first start of a config usually trips it).
    const msg =
      e.type === 'mass_drift_frozen' && e.hint ? `mass_drift_frozen: ${e.reason}; ${e.hint}` : e.type;
    this.opts.log[level]({ event: e }, msg);
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.opts.log.error({ err: errorMessage(err) }, 'event listener failed');
      }
    }
  }

  /** False while the state or audit cannot be written: the agent acts on nothing and is unready. */
  get stateWritable(): boolean {
    return this.stateError === null;
  }

  /** Why the state is unwritable, or null. */
  get stateUnwritableReason(): string | null {
    return this.stateError;
  }

  /** Records the outcome of a state write, emitting `state_unwritable` / `state_recovered` on transitions. */
  private noteStateWrite(error: string | null): void {
    if (error !== null && this.stateError === null) this.emit({ type: 'state_unwritable', error });
    if (error === null && this.stateError !== null) this.emit({ type: 'state_recovered' });
    this.stateError = error;
  }

  /** `observe_failing` / `observe_recovered` on transitions only. */
  private noteObserveErrors(report: CycleReport): void {
    if (report.observeErrors > 0 && !this.observeFailing)
      this.emit({
        type: 'observe_failing',
        count: report.observeErrors,
        codes: [...new Set(report.errors.map((e) => e.code))].sort(),
      });
    if (report.observeErrors === 0 && this.observeFailing) this.emit({ type: 'observe_recovered' });
    this.observeFailing = report.observeErrors > 0;
  }

  /** The config file the agent runs from, if known (for the commands its hints name). */
  get configFile(): string | null {
    return this.opts.configFile ?? null;
  }

  /**
   * A warning line when cycles start being held (frozen, state unwritable) and when the set of resources
   * that could not be observed changes (kind/name and code; never an error's text, which may quote
   * contents); an info line when it is over. Once per change, never every cycle.
   */
  private warnOnChange(report: CycleReport): void {
    const log = this.opts.log;
    const freeze = this.state?.freeze;
    const held =
      report.stateError !== null
        ? `the state cannot be written (${report.stateError})`
        : freeze
          ? `frozen by ${freeze.by}: ${freeze.reason}`
          : null;
    if (held !== this.heldWarned) {
      if (held !== null)
        log.warn({ drifted: report.drifted }, `cycles held, ${held}: drift is detected, nothing is applied`);
      else
        log.info(
          report.mode === 'observe'
            ? 'cycles no longer held (observe mode: drift is reported, not applied)'
            : 'cycles no longer held: acting again',
        );
      this.heldWarned = held;
    }
    const failing = report.errors.map((e) => `${e.kind}/${e.name} (${e.code})`).sort();
    const key = failing.join(', ');
    if (key !== this.observeWarned) {
      if (failing.length > 0) {
        const shown = failing.length > 10 ? `${failing.slice(0, 10).join(', ')}, …` : key;
        log.warn(
          { count: failing.length, codes: [...new Set(report.errors.map((e) => e.code))].sort() },
          `${failing.length === 1 ? '1 resource' : `${failing.length} resources`} could not be observed, held (never treated as missing): ${shown}`,
        );
      } else log.info('every resource was observed again');
      this.observeWarned = key;
    }
  }

  get source(): DesiredStateSource {
    return this.opts.source;
  }

  /** The persisted state as of now (read-only view). */
  get currentState(): Readonly<PersistedState> {
    if (!this.state) throw new Error('agent not initialised');
    return this.state;
  }

  get mode(): Mode {
    return this.currentState.mode ?? this.opts.initialMode;
  }

  /**
   * The state as the status shows it: with a shared backend, the fleet's freeze and mode as they are
   * now (another agent may have changed them since this one's last cycle); if that read fails or takes
   * over a second (a wedged database), this agent's own view (its cycles report the backend's failure).
   */
  async statusState(): Promise<{ state: PersistedState; mode: Mode }> {
    const own = this.currentState;
    const shared = await this.peekShared(own);
    const state = shared ? { ...own, ...shared } : own;
    return { state, mode: state.mode ?? this.opts.initialMode };
  }

  /** The shared backend's freeze and mode (null: no shared backend, or no answer within STATUS_PEEK_MS). */
  private async peekShared(own: PersistedState): Promise<Pick<PersistedState, 'freeze' | 'mode'> | null> {
    const { store } = this.opts;
    if (!store.peekShared) return null;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((r) => {
      timer = setTimeout(() => r(null), STATUS_PEEK_MS);
    });
    try {
      return await Promise.race([store.peekShared(own).catch(() => null), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Loads the state (a corrupt one throws) and restores the last accepted revision. */
  async init(): Promise<void> {
    this.state = await this.opts.store.load();
    await this.opts.source.prepare(); // source.verify's keys: a bad one stops the start
    const sha = this.state.revision?.sha;
    if (sha && (await this.opts.source.restore(sha))) {
      this.opts.log.info({ sha }, 'restored last accepted revision');
      this.shareRestoredBases();
    }
    this.armExpiry();
  }

  /**
   * Points the loaded records at the restored revision's documents where they equal them (one copy of each
   * in memory, not two: ≈ 50 MiB at 100k Files), when the store takes the result as what it saved.
   */
  private shareRestoredBases(): void {
    const revision = this.opts.source.current;
    const state = this.state;
    if (!revision || !state || !this.opts.store.adopt) return;
    const resources = shareBases(state.resources, revision.resources);
    const next = resources === null ? null : { ...state, resources };
    if (next && this.opts.store.adopt(next)) this.state = next;
  }

  /** Starts polling and the level trigger; the first poll and cycle run at once. */
  async start(): Promise<void> {
    if (!this.state) await this.init();
    this.startHealth();
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      this.timers.push(t);
    };
    every(this.opts.sourceIntervalMs, () => void this.refresh(false));
    every(this.opts.reconcileIntervalMs, () => void this.trigger('interval'));
    await this.poll();
    void this.trigger('start');
  }

  /**
   * Polls the source now and runs a cycle if a new good revision arrived
   * (or always, with `force`: a push webhook or POST /v1/reconcile).
   */
  refresh(force: boolean): Promise<void> {
    const p = (async () => {
      // Forced (a push webhook, POST /v1/reconcile): a poll already in flight may have read the ref before
      // the push it announces; wait for it and poll again (pollers arriving together share that one).
      if (force && this.polling) await this.polling.catch(() => undefined);
      const o = await this.poll();
      if (force || o.kind === 'accepted') await this.trigger(force ? 'requested' : 'revision');
    })();
    this.refreshing.add(p);
    void p.finally(() => this.refreshing.delete(p)).catch(() => undefined);
    return p;
  }

  /** Asks the source for news (no cycle). Concurrent calls share one poll. */
  poll(): Promise<PollOutcome> {
    if (this.polling) return this.polling;
    this.polling = (async () => {
      try {
        const outcome = await this.opts.source.poll();
        this.onPoll(outcome);
        this.notify(this.pollListeners, outcome);
        return outcome;
      } finally {
        this.polling = null;
      }
    })();
    return this.polling;
  }

  private onPoll(o: PollOutcome): void {
    if (o.kind === 'error') {
      if (!this.sourceDown)
        this.emit({ type: 'source_unreachable', error: o.error.message, code: o.error.code });
      this.sourceDown = true;
      return;
    }
    if (this.sourceDown) {
      this.sourceDown = false;
      this.emit({ type: 'source_recovered', sha: o.kind === 'accepted' ? o.revision.sha : o.sha });
    }
    if (o.kind === 'rejected')
      this.emit({
        type: 'revision_rejected',
        sha: o.sha,
        problems: o.problems,
        ...(o.reason ? { reason: o.reason } : {}),
      });
    if (o.kind === 'accepted')
      this.emit({ type: 'revision_accepted', sha: o.revision.sha, resources: o.revision.resources.length });
  }

  /** Requests a cycle. Returns a promise that settles when the cycle (or the one it coalesced into) is done. */
  trigger(reason: string): Promise<void> {
    if (this.stopRequested) return Promise.resolve();
    if (this.running) {
      this.pending = true;
      return this.running;
    }
    this.opts.log.debug({ reason }, 'cycle triggered');
    this.running = this.runCycles();
    return this.running;
  }

  private async runCycles(): Promise<void> {
    try {
      do {
        this.pending = false;
        await this.runOneCycle();
      } while (this.pending && !this.stopRequested);
    } finally {
      // In the same turn as the last look at `pending`: a trigger after it starts a new run, never lost.
      this.running = null;
    }
  }

  /** Runs `fn` after every earlier state change or cycle has finished. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private runOneCycle(): Promise<void> {
    return this.exclusive(() => this.cycleNow());
  }

  private async cycleNow(): Promise<void> {
    const revision = this.opts.source.current;
    if (!revision || !this.state) {
      this.opts.log.warn('no good revision yet; nothing to reconcile');
      return;
    }
    this.cycleStartedAt = this.clock();
    try {
      const { state, report } = await this.reconciler.cycle(
        revision,
        this.state,
        () => this.stopRequested || this.haltActions > 0,
      );
      // The cycle's state is kept even when it could not be persisted: what is on disk (the write-ahead)
      // is never less cautious than memory, and memory may hold a freeze the disk could not take.
      this.state = state;
      this.armExpiry();
      this.lastCycle = report;
      this.cycles++;
      this.lastGoodCycleAt = this.clock();
      this.lastCycleError = report.stateError;
      this.noteStateWrite(report.stateError);
      this.noteObserveErrors(report);
      this.warnOnChange(report);
      this.notify(this.cycleListeners, report);
      this.opts.log.info(
        {
          revision: report.revision.slice(0, 12),
          mode: report.mode,
          frozen: report.frozen,
          managed: report.managed,
          drifted: report.drifted,
          applied: report.applied,
          failed: report.failed,
          held: report.held,
          observeErrors: report.observeErrors,
          durationMs: report.durationMs,
        },
        'cycle',
      );
    } catch (e) {
      // Not expected (the reconciler reports write failures instead of throwing): nothing of it is kept.
      this.lastCycleError = errorMessage(e);
      this.opts.log.error({ err: this.lastCycleError }, 'cycle failed');
    } finally {
      this.cycleStartedAt = null;
    }
  }

  /** Waits until no poll, requested refresh or cycle (with its coalesced follow-up) is in flight. */
  async idle(): Promise<void> {
    while (this.running || this.polling || this.refreshing.size > 0) {
      await Promise.allSettled([this.running, this.polling, ...this.refreshing]);
    }
  }

  /**
   * Changes state outside a cycle (freeze, mode, approvals): after the cycle in flight, persisted before it
   * counts. If it cannot be persisted it throws STATE_UNWRITABLE and changes nothing — except a change that
   * only makes the agent more cautious (`safer`: a freeze, observe mode), which holds in memory all the same.
   * `audit` is appended durably before the state is saved: no change without its record.
   */
  update(
    fn: (s: PersistedState) => PersistedState,
    safer = false,
    audit: readonly AuditRecord[] = [],
  ): Promise<PersistedState> {
    return this.exclusive(async () => {
      const { store } = this.opts;
      try {
        // A shared backend: decide on the fleet's state as it is now, not as this agent last saw it.
        if (store.refresh) this.state = await store.refresh(this.currentState);
      } catch (e) {
        throw this.unwritable(e, safer ? fn(this.currentState) : null);
      }
      const next = fn(this.currentState);
      try {
        if (audit.length > 0) await this.opts.store.appendAudit(audit);
        await store.save(next);
      } catch (e) {
        if (isStewardError(e, 'STATE_CONFLICT')) throw e; // nothing written: the caller reads and retries
        throw this.unwritable(e, safer ? next : null);
      }
      this.noteStateWrite(null);
      this.state = next;
      this.armExpiry();
      return next;
    });
  }

  /** A change that could not be persisted: `held` (a safer one) stays in memory all the same. */
  private unwritable(e: unknown, held: PersistedState | null): StewardError {
    this.noteStateWrite(errorMessage(e));
    if (held) this.state = held;
    return new StewardError(
      'STATE_UNWRITABLE',
      `the state could not be written (${errorMessage(e)}); ${
        held ? 'the change holds in memory, but would not survive a restart' : 'nothing was changed'
      }. Free space or fix the state backend and retry.`,
    );
  }

  async setMode(mode: Mode, by: string): Promise<void> {
    const halt = mode === 'observe' ? 1 : 0;
    this.haltActions += halt;
    await this.update((s) => ({ ...s, mode }), mode === 'observe').finally(() => {
      this.haltActions -= halt;
    });
    this.emit({ type: 'mode_changed', mode, by });
  }

  /**
   * Freezes; `until` (ms) ends it by itself at the first cycle or timer after it. A freeze the mass-drift
   * halt set never ends by itself, so it is not replaced by one that would (MASS_DRIFT_FROZEN).
   */
  async freeze(reason: string, by: string, end: RequestedEnd = null): Promise<void> {
    this.haltActions++;
    const since = this.clock();
    const until = endTime(end, since);
    try {
      await this.update((s) => {
        if (until !== null && s.freeze?.by === MASS_DRIFT_ACTOR)
          throw new StewardError(
            'MASS_DRIFT_FROZEN',
            'the mass-drift halt froze the agent, and that freeze never ends by itself: look at the drift (GET /v1/drift), then unfreeze with approveRevision if the change is wanted',
          );
        // A freeze never shortens the one in force (an incident freeze outlives a later `--for 30m`):
        // the later end wins, no end beats any end. To end it sooner: unfreeze.
        const current = s.freeze;
        const kept = current === null ? until : laterEnd(current.until ?? null, until);
        return { ...s, freeze: { reason, by, since: current?.since ?? since, until: kept } };
      }, true);
    } finally {
      this.haltActions--;
      const f = this.currentState.freeze;
      if (f?.by === by)
        this.emit({ type: 'frozen', reason, by, ...(f.until != null ? { until: f.until } : {}) });
    }
  }

  /** The agent's clock (injected in tests). */
  now(): number {
    return this.clock();
  }

  /** The change windows' verdict now, an override counted. */
  get window(): WindowVerdict {
    return windowAt(this.opts.windows ?? [], this.clock(), this.currentState.windowOverride ?? null);
  }

  /**
   * Opens the change windows until `end` (an operator's override), audited before it counts. It never lifts
   * a freeze or observe mode. No windows configured: NO_CHANGE_WINDOWS (there is nothing to override).
   */
  async overrideWindow(reason: string, end: NonNullable<RequestedEnd>, by: string): Promise<WindowOverride> {
    if ((this.opts.windows ?? []).length === 0)
      throw new StewardError(
        'NO_CHANGE_WINDOWS',
        'no change windows are configured (windows: in the config), so there is nothing to override',
      );
    const since = this.clock();
    const override: WindowOverride = { reason, by, since, until: endTime(end, since)! };
    await this.update((s) => ({ ...s, windowOverride: override }), false, [
      {
        at: new Date(since).toISOString(),
        revision: this.opts.source.current?.sha ?? '',
        kind: 'Steward',
        name: 'window-override',
        id: null,
        patch: [],
        outcome: 'window-override',
        durationMs: 0,
        reason,
        by,
        until: new Date(override.until).toISOString(),
      },
    ]);
    this.emit({ type: 'window_override', reason, by, until: override.until });
    return override;
  }

  /** Arms the timer for the next end of the freeze or the window override (the cycle checks too). */
  private armExpiry(atLeastMs = 0): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    if (this.stopRequested || !this.state) return;
    const { freeze, windowOverride } = this.state;
    // The mass-drift halt's freeze never ends by itself (the reconciler's expire() leaves it): no timer for it.
    const ends = [freeze?.by === MASS_DRIFT_ACTOR ? null : freeze?.until, windowOverride?.until].filter(
      (t): t is number => typeof t === 'number',
    );
    if (ends.length === 0) return;
    const delay = Math.min(Math.max(atLeastMs, Math.min(...ends) - this.clock()), MAX_TIMER_MS);
    this.expiryTimer = setTimeout(() => void this.expireByTimer(), delay);
    this.expiryTimer.unref(); // the loop's own timers and the admin server keep a daemon alive
  }

  /** The timer's end of a freeze or override; then a cycle, when the loop runs (a write that fails: the cycles retry). */
  private async expireByTimer(): Promise<void> {
    this.expiryTimer = null;
    const ended = await this.exclusive(async () => {
      const r = await this.reconciler.expire(this.currentState, this.clock());
      if (r.wrote) this.noteStateWrite(r.error);
      this.state = r.state;
      for (const e of r.events) this.emit(e); // after the state changed: listeners (metrics) read it
      // Not over by the shared backend's clock yet (this one runs ahead): ask again in a second.
      if (r.error === null) this.armExpiry(r.deferred ? EXPIRY_RETRY_MS : 0);
      return r.wrote && r.error === null;
    });
    if (ended && this.timers.length > 0) void this.trigger('expiry');
  }

  /**
   * Lifts the freeze; `approveRevision` exempts the drift of that revision from the mass-drift halt until
   * it has converged (bound to the drift shown now when the last cycle ran on it). Not frozen: NOT_FROZEN
   * (an approval is never stored ahead of the freeze it would lift).
   */
  async unfreeze(by: string, approveRevision: string | null): Promise<void> {
    const last = this.lastCycle;
    await this.update((s) => {
      if (!s.freeze)
        throw new StewardError(
          'NOT_FROZEN',
          'the agent is not frozen: there is nothing to unfreeze or approve',
        );
      if (!approveRevision) return { ...s, freeze: null };
      const approval: Approval = {
        sha: approveRevision,
        by,
        at: this.clock(),
        keys: last?.revision === approveRevision ? last.drift.map((d) => `${d.kind}/${d.name}`) : null,
      };
      return {
        ...s,
        freeze: null,
        approvals: [...s.approvals.filter((a) => a.sha !== approveRevision), approval].slice(-20),
      };
    });
    this.emit({ type: 'unfrozen', by, approveRevision });
  }

  /** The audit log, newest first. */
  readAudit(limit: number) {
    return this.opts.store.readAudit(limit);
  }

  /** Graceful stop: no new cycle or action starts; the action in flight finishes; state is flushed. */
  async stop(): Promise<void> {
    this.stopRequested = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.healthRunner.stop();
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    await this.running;
    await this.polling?.catch(() => undefined);
    await this.queue;
    await this.opts.shards?.stop(); // after the action in flight: idle shards are released, not left to expire
    await this.opts.store.close?.().catch(() => undefined);
  }
}
