/** What the admin API shows: plain data built from the agent, no secrets. */
import type { Agent } from '../agent.js';
import { formatProblem } from '../../core/errors.js';
import type { HealthReport } from '../health/types.js';
import { createsResource, massDriftHint } from '../first-start.js';
import { MASS_DRIFT_ACTOR } from '../reconciler.js';
import type { PersistedState } from '../state/types.js';
import type { Mode } from '../../policies/types.js';

const iso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

function freezeHint(agent: Agent, s: PersistedState): string | null {
  const sha = agent.source.current?.sha;
  if (s.freeze?.by !== MASS_DRIFT_ACTOR || sha === undefined) return null;
  const drift = agent.lastCycle?.drift ?? [];
  const creates = drift.filter((d) => createsResource(d.patch)).length;
  return massDriftHint(sha, agent.configFile, creates, drift.length);
}

/**
 * `GET /v1/status` (and the answer of the routes that change state). `shown`: the state and mode to show
 * — by default this agent's own; the status route passes the fleet's as it is now (`agent.statusState()`).
 */
export function statusView(
  agent: Agent,
  shown: { state: PersistedState; mode: Mode } = { state: agent.currentState, mode: agent.mode },
) {
  const s = shown.state;
  const src = agent.source;
  const c = agent.lastCycle;
  return {
    mode: shown.mode,
    freeze: {
      frozen: s.freeze !== null,
      reason: s.freeze?.reason ?? null,
      by: s.freeze?.by ?? null,
      since: iso(s.freeze?.since),
      /** When it ends by itself; null: only an unfreeze ends it (always so for the mass-drift halt). */
      until: iso(s.freeze?.until),
      /** A freeze by the mass-drift halt: what to run to let the change through, or to undo it. */
      hint: freezeHint(agent, s),
    },
    window: windowView(agent),
    revision: {
      sha: src.current?.sha ?? null,
      fetchedAt: iso(src.current?.fetchedAt),
      resources: src.current?.resources.length ?? 0,
      /** null: source.verify is not set (unverified); else whether the revision in force verified. */
      verified: src.verify ? src.current?.verified === true : null,
      signer: src.current?.signer ?? null,
      approved: src.current ? s.approvals.some((a) => a.sha === src.current!.sha) : false,
      rejected: src.rejected
        ? {
            sha: src.rejected.sha,
            at: iso(src.rejected.at),
            problems: src.rejected.problems.map(formatProblem),
          }
        : null,
    },
    approvals: s.approvals.map((a) => ({
      sha: a.sha,
      by: a.by,
      at: iso(a.at),
      resources: a.keys === null ? null : a.keys.length,
    })),
    state: { writable: agent.stateWritable, error: agent.stateUnwritableReason },
    source: { error: src.lastError ? { code: src.lastError.code, message: src.lastError.message } : null },
    lastCycle: c
      ? {
          startedAt: c.startedAt,
          durationMs: c.durationMs,
          revision: c.revision,
          managed: c.managed,
          drifted: c.drifted,
          applied: c.applied,
          failed: c.failed,
          held: c.held,
          observeErrors: c.observeErrors,
          soaking: c.soaking,
          stuck: c.stuck,
        }
      : null,
    cycles: agent.cycles,
    /** fleet.shards: the shards held and their lease epochs (null without shards). */
    shards: agent.shards,
    health: healthView(agent.health.latest()),
  };
}

/** The health report with ISO times (SPEC §11). */
export function healthView(h: HealthReport) {
  return {
    ok: h.ok,
    at: iso(h.at),
    checks: h.checks.map((c) => ({ ...c, at: iso(c.at) })),
    pending: h.pending ?? [],
  };
}

/** The change windows now (an override counted) and the override in force, if any. */
function windowView(agent: Agent) {
  const w = agent.window;
  const o = agent.currentState.windowOverride;
  const live = o != null && o.since <= agent.now() && agent.now() < o.until;
  return {
    open: w.open,
    reason: w.reason,
    until: iso(w.until),
    override: live ? { reason: o.reason, by: o.by, since: iso(o.since), until: iso(o.until) } : null,
  };
}

export function driftView(agent: Agent) {
  const c = agent.lastCycle;
  return {
    revision: c?.revision ?? null,
    at: c?.startedAt ?? null,
    drift: c?.drift ?? [],
    errors: c?.errors ?? [],
  };
}
