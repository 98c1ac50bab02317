/**
 * The daemon: polls the source, schedules cycles, owns the persisted state.
 *
 * Triggers: level (every reconcile.interval) and edge (a new revision, or an
 * explicit `trigger()` from the admin API or a push webhook). At most one
 * cycle runs; triggers that arrive during it coalesce into ONE follow-up.
 */
import type { GuardrailConfig, Mode } from '../policies/types.js';
import type { KindDefinition, Provider } from '../providers/types.js';
import { errorMessage, StewardError } from '../core/errors.js';
import type { AgentEvent, EventSink } from './events.js';
import type { Logger } from './log.js';
import { type CycleReport, Reconciler } from './reconciler.js';
import type { DesiredStateSource, PollOutcome } from './source/source.js';
import type { Approval, PersistedState, StateStore } from './state/types.js';
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
}

export class Agent {
  private state: PersistedState | null = null;
  private readonly reconciler: Reconciler;
  private readonly clock: () => number;
  private running: Promise<void> | null = null;
  private pending = false;
  private stopRequested = false;
  private timers: NodeJS.Timeout[] = [];
  private polling: Promise<PollOutcome> | null = null;
  private readonly refreshing = new Set<Promise<void>>();
  private sourceDown = false;
  /** Set by freeze / observe requests: the cycle in flight starts no further action. */
  private haltActions = false;
  /** Serialises cycles and state changes: nothing may read-modify-write the state concurrently. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners: EventSink[] = [];
  private readonly cycleListeners: Array<(r: CycleReport) => void> = [];
  private readonly pollListeners: Array<(o: PollOutcome) => void> = [];
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
      fence: opts.shards?.fence,
    });
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
    this.opts.log[level]({ event: e }, e.type);
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

  /** Loads the state (a corrupt one throws) and restores the last accepted revision. */
  async init(): Promise<void> {
    this.state = await this.opts.store.load();
    await this.opts.source.prepare(); // source.verify's keys: a bad one stops the start
    const sha = this.state.revision?.sha;
    if (sha && (await this.opts.source.restore(sha)))
      this.opts.log.info({ sha }, 'restored last accepted revision');
  }

  /** Starts polling and the level trigger; the first poll and cycle run at once. */
  async start(): Promise<void> {
    if (!this.state) await this.init();
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
    this.running = this.runCycles().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async runCycles(): Promise<void> {
    do {
      this.pending = false;
      await this.runOneCycle();
    } while (this.pending && !this.stopRequested);
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
    this.haltActions = false;
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
        () => this.stopRequested || this.haltActions,
      );
      // The cycle's state is kept even when it could not be persisted: what is on disk (the write-ahead)
      // is never less cautious than memory, and memory may hold a freeze the disk could not take.
      this.state = state;
      this.lastCycle = report;
      this.cycles++;
      this.lastGoodCycleAt = this.clock();
      this.lastCycleError = report.stateError;
      this.noteStateWrite(report.stateError);
      this.noteObserveErrors(report);
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
   */
  update(fn: (s: PersistedState) => PersistedState, safer = false): Promise<PersistedState> {
    return this.exclusive(async () => {
      const next = fn(this.currentState);
      try {
        await this.opts.store.save(next);
      } catch (e) {
        this.noteStateWrite(errorMessage(e));
        if (safer) this.state = next;
        throw new StewardError(
          'STATE_UNWRITABLE',
          `the state could not be written (${errorMessage(e)}); ${
            safer ? 'the change holds in memory, but would not survive a restart' : 'nothing was changed'
          }. Free space or fix ${'the state directory'} and retry.`,
        );
      }
      this.noteStateWrite(null);
      this.state = next;
      return next;
    });
  }

  async setMode(mode: Mode, by: string): Promise<void> {
    if (mode === 'observe') this.haltActions = true;
    await this.update((s) => ({ ...s, mode }), mode === 'observe');
    this.emit({ type: 'mode_changed', mode, by });
  }

  async freeze(reason: string, by: string): Promise<void> {
    this.haltActions = true;
    try {
      await this.update((s) => ({ ...s, freeze: { reason, by, since: this.clock() } }), true);
    } finally {
      if (this.currentState.freeze?.by === by) this.emit({ type: 'frozen', reason, by });
    }
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
    await this.running;
    await this.polling?.catch(() => undefined);
    await this.opts.shards?.stop(); // after the action in flight: idle shards are released, not left to expire
  }
}
