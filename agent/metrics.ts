/**
 * Prometheus metrics (SPEC §7). Label values are bounded: kinds, outcomes,
 * event names, provider operations — never resource ids, and no commit SHA
 * except on the one `_info` metric.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AgentEvent } from './events.js';
import type { HealthCheckResult } from './health/types.js';
import type { CycleReport } from './reconciler.js';

export class Metrics {
  readonly registry = new Registry();
  private readonly managed = new Gauge({
    name: 'steward_managed_resources',
    help: 'Resources in the current desired revision.',
    registers: [this.registry],
  });
  private readonly drifted = new Gauge({
    name: 'steward_drifted_resources',
    help: 'Resources whose owned fields differ from Git (last cycle).',
    registers: [this.registry],
  });
  private readonly frozen = new Gauge({
    name: 'steward_frozen',
    help: '1 while the agent is frozen (manual or mass-drift halt).',
    registers: [this.registry],
  });
  private readonly observeOnly = new Gauge({
    name: 'steward_observe_only',
    help: '1 while the agent is in observe mode.',
    registers: [this.registry],
  });
  private readonly windowOpen = new Gauge({
    name: 'steward_window_open',
    help: '1 while the change windows let the agent act (none configured, or an override), 0 while closed.',
    registers: [this.registry],
  });
  private readonly stuck = new Gauge({
    name: 'steward_stuck_resources',
    help: 'Resources that did not converge after nonConvergence.alertAfterCycles acted cycles.',
    registers: [this.registry],
  });
  private readonly observeErrors = new Gauge({
    name: 'steward_observe_errors',
    help: 'Resources that could not be observed in the last cycle.',
    registers: [this.registry],
  });
  private readonly stateWritable = new Gauge({
    name: 'steward_state_writable',
    help: '1 while the state and audit can be written; 0 while they cannot (the agent then acts on nothing).',
    registers: [this.registry],
  });
  private readonly shardsHeld = new Gauge({
    name: 'steward_shards_held',
    help: 'Shards of shared (EC2) resources whose lease this agent holds now (fleet.shards; 0 without).',
    registers: [this.registry],
  });
  private readonly cycleDuration = new Histogram({
    name: 'steward_cycle_duration_seconds',
    help: 'Duration of reconcile cycles.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  private readonly convergence = new Histogram({
    name: 'steward_convergence_seconds',
    help: 'From drift first seen to converged.',
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 21600],
    registers: [this.registry],
  });
  private readonly actions = new Counter({
    name: 'steward_actions_total',
    help: 'Applied actions by kind and outcome.',
    labelNames: ['kind', 'outcome'],
    registers: [this.registry],
  });
  private readonly revisionInfo = new Gauge({
    name: 'steward_desired_revision_info',
    help: 'The desired revision in force (value 1).',
    labelNames: ['sha'],
    registers: [this.registry],
  });
  private readonly revisionVerified = new Gauge({
    name: 'steward_revision_verified',
    help: 'Whether the revision in force verified under source.verify (1), or not / no source.verify (0).',
    registers: [this.registry],
  });
  readonly sourceErrors = new Counter({
    name: 'steward_source_errors_total',
    help: 'Failed polls of the Git source.',
    registers: [this.registry],
  });
  private readonly revisionsRejected = new Counter({
    name: 'steward_revisions_rejected_total',
    help: 'Revisions rejected as invalid.',
    registers: [this.registry],
  });
  readonly alerts = new Counter({
    name: 'steward_alerts_total',
    help: 'Alert deliveries by event and outcome (sent, failed, dropped).',
    labelNames: ['event', 'outcome'],
    registers: [this.registry],
  });
  readonly providerRequests = new Counter({
    name: 'steward_provider_requests_total',
    help: 'Provider API requests by provider and operation.',
    labelNames: ['provider', 'operation'],
    registers: [this.registry],
  });
  private readonly cycles = new Counter({
    name: 'steward_cycles_total',
    help: 'Completed reconcile cycles.',
    registers: [this.registry],
  });
  private readonly healthOk = new Gauge({
    name: 'steward_health_check_ok',
    help: 'Whether the health check passed its last run (1) or failed, could not run, or has not run yet (0).',
    labelNames: ['check'],
    registers: [this.registry],
  });
  private readonly healthDuration = new Gauge({
    name: 'steward_health_check_duration_seconds',
    help: 'Duration of the last run of the health check.',
    labelNames: ['check'],
    registers: [this.registry],
  });
  private currentSha: string | null = null;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.stateWritable.set(1);
    this.revisionVerified.set(0);
    this.windowOpen.set(1);
  }

  /** Whether the change windows are open now: set each cycle, at start and on an override. */
  setWindow(open: boolean): void {
    this.windowOpen.set(open ? 1 : 0);
  }

  /** The state that is true between cycles (mode, freeze): set at start and on every change. */
  setControl(c: { frozen: boolean; observe: boolean }): void {
    this.frozen.set(c.frozen ? 1 : 0);
    this.observeOnly.set(c.observe ? 1 : 0);
  }

  /** `verified`: whether the revision's signatures verified (SPEC §10); left as it is when not given. */
  setRevision(sha: string, verified?: boolean): void {
    if (verified !== undefined) this.revisionVerified.set(verified ? 1 : 0);
    if (sha === this.currentSha) return;
    if (this.currentSha) this.revisionInfo.remove({ sha: this.currentSha });
    this.revisionInfo.set({ sha }, 1);
    this.currentSha = sha;
  }

  /** After every lease renew round (fleet.shards). */
  setShardsHeld(n: number): void {
    this.shardsHeld.set(n);
  }

  cycle(r: CycleReport): void {
    this.cycles.inc();
    this.managed.set(r.managed);
    this.drifted.set(r.drifted);
    this.stuck.set(r.stuck);
    this.observeErrors.set(r.observeErrors);
    this.setControl({ frozen: r.frozen, observe: r.mode === 'observe' });
    this.setRevision(r.revision);
    this.setWindow(r.window.open);
    this.cycleDuration.observe(r.durationMs / 1000);
    for (const o of r.outcomes) this.actions.inc({ kind: o.kind, outcome: o.outcome });
    for (const s of r.convergedAfterSeconds) this.convergence.observe(s);
  }

  /** The configured checks (names from the agent config, a bounded set): 0 until each has passed. */
  healthChecks(names: readonly string[]): void {
    for (const check of names) this.healthOk.set({ check }, 0);
  }

  health(r: HealthCheckResult): void {
    this.healthOk.set({ check: r.name }, r.ok ? 1 : 0);
    this.healthDuration.set({ check: r.name }, r.durationMs / 1000);
  }

  event(e: AgentEvent): void {
    if (e.type === 'source_unreachable') this.sourceErrors.inc();
    if (e.type === 'revision_rejected') this.revisionsRejected.inc();
    if (e.type === 'state_unwritable') this.stateWritable.set(0);
    if (e.type === 'state_recovered') this.stateWritable.set(1);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
