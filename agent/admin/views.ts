/** What the admin API shows: plain data built from the agent, no secrets. */
import type { Agent } from '../agent.js';
import { formatProblem } from '../../core/errors.js';

const iso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

export function statusView(agent: Agent) {
  const s = agent.currentState;
  const src = agent.source;
  const c = agent.lastCycle;
  return {
    mode: agent.mode,
    freeze: {
      frozen: s.freeze !== null,
      reason: s.freeze?.reason ?? null,
      by: s.freeze?.by ?? null,
      since: iso(s.freeze?.since),
    },
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
