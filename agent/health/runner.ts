/**
 * The health runner (SPEC §11): runs every configured check on its own
 * interval and keeps the latest result of each — the agent's
 * {@link HealthSource}.
 *
 * - A run of a check is bounded by the check's timeout; a check never runs
 *   twice at once: a tick, or a `check()`, that finds a run in flight waits for
 *   that run instead of starting another.
 * - A check that cannot run (refused, timed out, not spawnable, a Prometheus
 *   error, …) is failing, with a detail that says why; the report is `ok` only
 *   when every configured check has a result and passed (no check: ok).
 * - `onTransition` is called when a check's verdict changes: its first result
 *   when that is failing, then on every change from failing to passing and
 *   back; never once per run. `onResult` gets every result (metrics).
 * - Health never makes the agent act or hold by itself: the rollout reads it.
 */
import { errorMessage } from '../../core/errors.js';
import type { AgentEvent } from '../events.js';
import type { Logger } from '../log.js';
import { runCommandCheck } from './command.js';
import { runHttpCheck } from './http.js';
import { runPrometheusCheck } from './prometheus.js';
import type {
  HealthCheckResult,
  HealthCheckSpec,
  HealthProbeResult,
  HealthReport,
  HealthSource,
} from './types.js';

/** A change of a check's verdict: the agent emits it as is (an alert, a warning log line). */
export type HealthTransition = Extract<AgentEvent, { type: 'health_failing' | 'health_recovered' }>;

export interface HealthRunnerOptions {
  checks: readonly HealthCheckSpec[];
  log: Logger;
  clock?: () => number;
  onResult?: (r: HealthCheckResult) => void;
  onTransition?: (t: HealthTransition) => void;
}

/** Runs one check once, bounded by its timeout and by `stop`. */
export function probe(spec: HealthCheckSpec, stop: AbortSignal): Promise<HealthProbeResult> {
  switch (spec.kind) {
    case 'http':
      return runHttpCheck(spec, stop);
    case 'command':
      return runCommandCheck(spec, stop);
    case 'prometheus':
      return runPrometheusCheck(spec, stop);
  }
}

export class HealthRunner implements HealthSource {
  private readonly clock: () => number;
  private readonly results = new Map<string, HealthCheckResult>();
  private readonly inFlight = new Map<string, Promise<HealthCheckResult>>();
  private readonly stopping = new AbortController();
  private timers: NodeJS.Timeout[] = [];
  private started = false;

  constructor(private readonly opts: HealthRunnerOptions) {
    this.clock = opts.clock ?? Date.now;
  }

  /** The configured checks, in config order. */
  get checks(): readonly HealthCheckSpec[] {
    return this.opts.checks;
  }

  /** Runs every check now, then each on its interval. Idempotent; nothing happens after `stop()`. */
  start(): void {
    if (this.started || this.stopping.signal.aborted) return;
    this.started = true;
    for (const spec of this.opts.checks) {
      void this.run(spec);
      const t = setInterval(() => void this.run(spec), spec.intervalMs);
      this.timers.push(t);
    }
  }

  /** Stops the timers and aborts the runs in flight (their processes killed, their requests dropped). */
  async stop(): Promise<void> {
    this.stopping.abort();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await Promise.allSettled([...this.inFlight.values()]);
  }

  latest(): HealthReport {
    const checks: HealthCheckResult[] = [];
    const pending: string[] = [];
    for (const spec of this.opts.checks) {
      const r = this.results.get(spec.name);
      if (r) checks.push(r);
      else pending.push(spec.name);
    }
    const complete = pending.length === 0;
    const at = complete && checks.length > 0 ? Math.max(...checks.map((c) => c.at)) : null;
    return {
      ok: complete && checks.every((c) => c.ok),
      at: this.opts.checks.length === 0 ? null : at,
      checks,
      ...(complete ? {} : { pending }),
    };
  }

  async check(opts: { fresh?: boolean } = {}): Promise<HealthReport> {
    await Promise.all(
      this.opts.checks.map(async (spec) => {
        if (opts.fresh) await this.inFlight.get(spec.name)?.catch(() => undefined);
        await this.run(spec);
      }),
    );
    return this.latest();
  }

  /** One run of `spec`, or the one in flight. */
  private run(spec: HealthCheckSpec): Promise<HealthCheckResult> {
    const running = this.inFlight.get(spec.name);
    if (running) return running;
    const p = this.runNow(spec).finally(() => this.inFlight.delete(spec.name));
    this.inFlight.set(spec.name, p);
    return p;
  }

  private async runNow(spec: HealthCheckSpec): Promise<HealthCheckResult> {
    const started = this.clock();
    let found: HealthProbeResult;
    try {
      found = await probe(spec, this.stopping.signal);
    } catch (e) {
      found = { ok: false, detail: `the check failed to run: ${errorMessage(e)}` }; // not expected: probes report
    }
    const at = this.clock();
    const result: HealthCheckResult = {
      name: spec.name,
      kind: spec.kind,
      ok: found.ok,
      detail: found.detail,
      at,
      durationMs: Math.max(0, at - started),
    };
    if (this.stopping.signal.aborted) return result; // a run cut short by the stop is no verdict
    const before = this.results.get(spec.name);
    this.results.set(spec.name, result);
    this.notify(() => this.opts.onResult?.(result));
    const changed = before === undefined ? !result.ok : before.ok !== result.ok;
    if (changed) {
      const t: HealthTransition = {
        type: result.ok ? 'health_recovered' : 'health_failing',
        check: spec.name,
        kind: spec.kind,
        detail: result.detail,
      };
      this.notify(() => this.opts.onTransition?.(t));
    }
    return result;
  }

  private notify(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.log.error({ err: errorMessage(err) }, 'health listener failed');
    }
  }
}
