/**
 * Alert planning (SPEC §8), pure: which alerts an agent event raises, on
 * transitions only. {@link OpenAlerts} remembers the open (firing, not yet
 * resolved) problems, so each is announced once and resolved once however
 * often the agent repeats it; {@link stamp} turns a draft into the payload a
 * receiver gets; {@link wants} says which receivers get it. No I/O, no clock.
 */
import { formatProblem } from '../../core/errors.js';
import type { FiringEvent, ResolvedEvent } from '../alert-events.js';
import type { AlertConfig } from '../config.js';
import type { AgentEvent } from '../events.js';

type AlertSeverity = 'critical' | 'warning' | 'info';

/** The JSON body of every alert POST (docs/alerts.md). */
export interface AlertPayload {
  event: string;
  status: 'firing' | 'resolved';
  severity: AlertSeverity;
  message: string;
  /** When the alert was raised (ISO 8601, UTC); the same on every retry. */
  at: string;
  /** The desired revision (sha) the agent works from, or null before the first good one. */
  revision: string | null;
  details: Record<string, unknown>;
  /** On a resolved alert: the firing event it resolves. */
  resolves?: string;
}

/** An alert before it is stamped with time and revision. */
export type AlertDraft = Omit<AlertPayload, 'at' | 'revision'>;

/**
 * An alert that was already open when the agent started: the agent passes
 * its persisted freeze. Only conditions without a key can be carried over
 * (not a stuck resource, not a rejected sha, not a failing check), and never the mass_release notice.
 */
export interface OpenAlert {
  event: Exclude<FiringEvent, 'resource_stuck' | 'revision_rejected' | 'mass_release' | 'health_failing'>;
}

/** A `revision_rejected` alert lists at most this many problems (details.problemCount has the total). */
const MAX_PROBLEMS = 50;

/** The slot of an open alert: its event name, or `resource_stuck:<key>` (one per resource). */
function slotOf(event: FiringEvent, key?: string): string {
  return event === 'resource_stuck' || event === 'health_failing' ? `${event}:${key ?? ''}` : event;
}

/** The open alerts, by slot. The value (a fingerprint) tells a repeat from news. */
export class OpenAlerts {
  private readonly open = new Map<string, string>();

  /** Alerts open before this process started, so that their recovery is still sent. */
  constructor(initiallyOpen: readonly OpenAlert[] = []) {
    for (const o of initiallyOpen) this.fire(o.event);
  }

  /** Opens `slot`; false when it is already open with the same `fingerprint` (nothing to send). */
  fire(slot: string, fingerprint = ''): boolean {
    if (this.open.get(slot) === fingerprint) return false;
    this.open.set(slot, fingerprint);
    return true;
  }

  /** Closes `slot`; false when it was not open (nothing to resolve). */
  resolve(slot: string): boolean {
    return this.open.delete(slot);
  }
}

function firing(event: FiringEvent, severity: AlertSeverity, message: string, details: object): AlertDraft {
  return { event, status: 'firing', severity, message, details: { ...details } };
}

function resolved(event: ResolvedEvent, resolves: FiringEvent, message: string, details: object): AlertDraft {
  return { event, status: 'resolved', resolves, severity: 'info', message, details: { ...details } };
}

const short = (sha: string): string => sha.slice(0, 12);

/** `//user:password@` in an error message becomes `//***@`. */
const scrubUserinfo = (text: string): string => text.replace(/\/\/[^/\s@]+@/g, '//***@');

/**
 * The alerts an agent event raises (often none), updating `open`. Pure apart
 * from `open`. A repeat of an open problem raises nothing; a recovery raises
 * a resolved alert only when its problem is open. A `revision_rejected` of a
 * different sha than the open one is news (other problems) and fires again.
 */
export function planAlerts(e: AgentEvent, open: OpenAlerts): AlertDraft[] {
  switch (e.type) {
    case 'mass_drift_frozen': {
      const message = `steward froze itself (mass drift): ${e.reason}. Nothing is applied until an operator unfreezes it${e.hint ? `: ${e.hint}` : '.'}`;
      const details = { reason: e.reason, sha: e.sha, ...(e.hint ? { hint: e.hint } : {}) };
      return open.fire('mass_drift_frozen')
        ? [firing('mass_drift_frozen', 'critical', message, details)]
        : [];
    }
    case 'frozen': {
      const until = typeof e.until === 'number' ? new Date(e.until).toISOString() : null;
      const message = `steward was frozen by ${e.by}${until ? ` until ${until}` : ''}: ${e.reason}. Drift is detected but not reverted.`;
      return open.fire('frozen')
        ? [firing('frozen', 'warning', message, { reason: e.reason, by: e.by, until })]
        : [];
    }
    case 'unfrozen': {
      const message =
        e.by === 'expiry'
          ? 'the freeze ended by itself (its end time passed); steward acts again, within its guardrails.'
          : `steward was unfrozen by ${e.by}.`;
      return (['mass_drift_frozen', 'frozen'] as const)
        .filter((slot) => open.resolve(slot))
        .map((slot) => resolved('unfrozen', slot, message, { by: e.by, approveRevision: e.approveRevision }));
    }
    case 'resource_stuck': {
      const message = `${e.key} is still drifted after ${e.attempts} attempts to revert it.`;
      return open.fire(slotOf('resource_stuck', e.key))
        ? [firing('resource_stuck', 'warning', message, { key: e.key, id: e.id, attempts: e.attempts })]
        : [];
    }
    case 'resource_recovered':
      return open.resolve(slotOf('resource_stuck', e.key))
        ? [resolved('resource_recovered', 'resource_stuck', `${e.key} converged.`, { key: e.key, id: e.id })]
        : [];
    case 'revision_rejected':
      return open.fire('revision_rejected', e.sha) ? [rejected(e)] : [];
    case 'revision_accepted': {
      const message = `revision ${short(e.sha)} was accepted; the rejected one is no longer current.`;
      return open.resolve('revision_rejected')
        ? [
            resolved('revision_recovered', 'revision_rejected', message, {
              sha: e.sha,
              resources: e.resources,
            }),
          ]
        : [];
    }
    case 'source_unreachable': {
      const error = scrubUserinfo(e.error);
      const message = `the Git source cannot be read: ${error}. steward keeps the last good revision.`;
      return open.fire('source_unreachable')
        ? [firing('source_unreachable', 'critical', message, { error, code: e.code })]
        : [];
    }
    case 'source_recovered':
      return open.resolve('source_unreachable')
        ? [
            resolved('source_recovered', 'source_unreachable', 'the Git source is readable again.', {
              sha: e.sha,
            }),
          ]
        : [];
    case 'state_unwritable': {
      const message = `steward cannot write its state or audit (${e.error}): it acts on nothing until it can; drift is still detected.`;
      return open.fire('state_unwritable')
        ? [firing('state_unwritable', 'critical', message, { error: e.error })]
        : [];
    }
    case 'state_recovered':
      return open.resolve('state_unwritable')
        ? [resolved('state_recovered', 'state_unwritable', 'steward can write its state again.', {})]
        : [];
    case 'observe_failing': {
      const message = `${e.count} resource${e.count === 1 ? '' : 's'} could not be observed (${e.codes.join(', ')}); they are held, never treated as missing.`;
      return open.fire('observe_failing')
        ? [firing('observe_failing', 'warning', message, { count: e.count, codes: e.codes })]
        : [];
    }
    case 'observe_recovered':
      return open.resolve('observe_failing')
        ? [resolved('observe_recovered', 'observe_failing', 'every resource can be observed again.', {})]
        : [];
    case 'mass_release': {
      // A notice, not a condition: released resources are left as they are, and nothing resolves it.
      const message =
        `revision ${short(e.sha)} no longer manages ${e.released} of ${e.managedBefore} resources (more than the mass-drift limits); ` +
        'they are left as they are. If the folder was emptied by mistake, revert the commit.';
      return [
        firing('mass_release', 'warning', message, {
          sha: e.sha,
          released: e.released,
          managedBefore: e.managedBefore,
        }),
      ];
    }
    case 'health_failing': {
      const message = `health check ${e.check} (${e.kind}) is failing: ${e.detail}.`;
      return open.fire(slotOf('health_failing', e.check))
        ? [firing('health_failing', 'warning', message, { check: e.check, kind: e.kind, detail: e.detail })]
        : [];
    }
    case 'health_recovered':
      return open.resolve(slotOf('health_failing', e.check))
        ? [
            resolved(
              'health_recovered',
              'health_failing',
              `health check ${e.check} (${e.kind}) passes again.`,
              {
                check: e.check,
                kind: e.kind,
                detail: e.detail,
              },
            ),
          ]
        : [];
    case 'mode_changed':
    case 'resource_released':
    case 'approval_spent':
    case 'window_override': // audited; not a problem to alert on
    case 'window_override_ended':
      return [];
  }
}

function rejected(e: Extract<AgentEvent, { type: 'revision_rejected' }>): AlertDraft {
  const n = e.problems.length;
  const message =
    `revision ${short(e.sha)} was rejected (${n} problem${n === 1 ? '' : 's'}); ` +
    'steward keeps reconciling the last good revision.';
  const problems = e.problems.slice(0, MAX_PROBLEMS).map(formatProblem);
  const details = { sha: e.sha, problems, problemCount: n, ...(e.reason ? { reason: e.reason } : {}) };
  return firing('revision_rejected', 'critical', message, details);
}

/**
 * Whether a receiver gets an alert: it lists the alert's event, or, for a
 * resolved alert, the firing event it resolves (listing `source_unreachable`
 * brings `source_recovered` too).
 */
export function wants(receiver: AlertConfig, alert: Pick<AlertDraft, 'event' | 'resolves'>): boolean {
  return (
    receiver.events.includes(alert.event) ||
    (alert.resolves !== undefined && receiver.events.includes(alert.resolves))
  );
}

/** The payload of `draft`, raised at `now` (ms since the epoch) while the agent works from `revision`. */
export function stamp(draft: AlertDraft, now: number, revision: string | null): AlertPayload {
  const { event, status, resolves, severity, message, details } = draft;
  return {
    event,
    status,
    ...(resolves ? { resolves } : {}),
    severity,
    message,
    at: new Date(now).toISOString(),
    revision,
    details,
  };
}
