/**
 * What an agent knows about the health of the service it manages (SPEC §11
 * `health:`): the latest result of each configured check. Health checks are
 * agent config, never Git. Read by the status view, the metrics and the
 * fleet rollout (a wave opens only while its agents are healthy).
 */

/** One check's latest result. A check that could not run (timeout, spawn error, bad query) is failing. */
export interface HealthCheckResult {
  name: string;
  kind: 'http' | 'command' | 'prometheus';
  ok: boolean;
  /** Why it failed, or a short description of the success (e.g. "HTTP 200"); never a secret or a response body. */
  detail: string;
  /** When this result was taken (ms since the epoch). */
  at: number;
  durationMs: number;
}

export interface HealthReport {
  /** True when no check is configured, or every configured check has a result and passed. */
  ok: boolean;
  /** Null until the first round of checks completed. */
  at: number | null;
  checks: HealthCheckResult[];
  /** Configured checks that have no result yet (they keep `ok` false); absent when there are none. */
  pending?: string[];
}

/** Where the agent reads its latest health from (the runner in agent/health/, or a fixed report in tests). */
export interface HealthSource {
  latest(): HealthReport;
  /** Runs every check now and returns the fresh report (e.g. before a wave gate decision). */
  /**
   * `fresh`: only results of runs that START now count — a run already in flight (it may have started
   * before a change the caller just made) is waited for and run again, not joined.
   */
  check(opts?: { fresh?: boolean }): Promise<HealthReport>;
}

/** One configured check as the runner takes it (from `health:` in the agent config): milliseconds, absolute paths. */
export type HealthCheckSpec =
  | (HealthCheckBase & { kind: 'http'; url: string; expectStatus: number })
  | (HealthCheckBase & { kind: 'command'; argv: readonly string[]; cwd: string })
  | (HealthCheckBase & { kind: 'prometheus'; url: string; query: string });

export interface HealthCheckBase {
  /** Unique among the agent's checks; a metric label value and an alert slot. */
  name: string;
  intervalMs: number;
  /** Bound of one run: the request, the process (its whole group) or the query is aborted past it. */
  timeoutMs: number;
}

/** What one run of a check found, before the runner stamps it with name, kind, time and duration. */
export interface HealthProbeResult {
  ok: boolean;
  detail: string;
}
