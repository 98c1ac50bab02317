/**
 * Alerts (SPEC §8): turns agent events into webhook POSTs, on transitions only.
 *
 * - {@link planAlerts} maps each {@link AgentEvent} to the alerts it raises,
 *   keeping track of the open (firing, not yet resolved) ones, so a problem is
 *   announced once and resolved once, however often the agent repeats it.
 * - Each receiver has its own bounded FIFO queue and ONE worker: a dead
 *   receiver delays only its own alerts, never another receiver or the agent
 *   loop, and one receiver's alerts arrive in order.
 * - Delivery: JSON POST, signed with HMAC-SHA256 when the receiver has a
 *   secret, retried with exponential backoff and full jitter on 5xx, 408, 429,
 *   network errors and timeouts. The delivery id stays the same across
 *   retries, so a receiver can de-duplicate.
 * - Receiver URLs often carry a token and secrets are secrets: neither is ever
 *   logged. Receivers are named by their 1-based position (`receiver #1`).
 *
 * docs/alerts.md describes the contract for receivers.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { FiringEvent, ResolvedEvent } from './alert-events.js';
import type { AlertConfig } from './config.js';
import { errorMessage, formatProblem } from '../core/errors.js';
import type { AgentEvent } from './events.js';
import type { Logger } from './log.js';

// ---------------------------------------------------------------------------
// The contract
// ---------------------------------------------------------------------------

export {
  ALERT_EVENT_NAMES,
  type AlertEventName,
  FIRING_EVENTS,
  type FiringEvent,
  RESOLVED_EVENTS,
  type ResolvedEvent,
} from './alert-events.js';

export type AlertOutcome = 'sent' | 'failed' | 'dropped';
export type AlertSeverity = 'critical' | 'warning' | 'info';

/** The JSON body of every alert POST. */
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

export interface RetryOptions {
  /** Tries in all, the first included (≥ 1). */
  attempts: number;
  /** Cap of the first backoff; doubles with every retry. */
  baseMs: number;
  /** Cap of any wait, Retry-After included. */
  maxMs: number;
}

/** An alert that was already open when the agent started (e.g. a persisted freeze). */
export interface OpenAlert {
  event: FiringEvent;
  /** The resource key of a `resource_stuck`, or the sha of a `revision_rejected`. */
  key?: string;
}

export interface AlerterOptions {
  receivers: readonly AlertConfig[];
  log: Logger;
  clock?: () => number;
  /** In [0, 1): the jitter source; Math.random by default. */
  random?: () => number;
  /** Called once per receiver per alert with the final outcome (for steward_alerts_total{event,outcome}). */
  onOutcome?: (event: string, outcome: AlertOutcome) => void;
  /** Default: 5 attempts, 500 ms base, doubling, at most 30 s. */
  retry?: RetryOptions;
  /** Alerts waiting per receiver (the one being delivered not counted); default 100. */
  queueLimit?: number;
  /** The current desired revision sha, for the payload. */
  revision?: () => string | null;
  /**
   * Alerts open before this process started, so that their recovery is still
   * sent. The agent passes its persisted freeze here: without it, an
   * `unfrozen` after a restart would find nothing open and send nothing.
   */
  initiallyOpen?: readonly OpenAlert[];
}

export const DEFAULT_RETRY: Readonly<RetryOptions> = Object.freeze({
  attempts: 5,
  baseMs: 500,
  maxMs: 30_000,
});
export const DEFAULT_QUEUE_LIMIT = 100;
/** The longest delay setTimeout takes (about 24.8 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/** A `revision_rejected` alert lists at most this many problems (details.problemCount has the total). */
export const MAX_PROBLEMS = 50;

// ---------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------

const SIGNATURE = /^sha256=([0-9a-f]{64})$/i;

/** `sha256=<hex>`: the HMAC-SHA256 of the exact body bytes (a string is taken as UTF-8). */
export function signBody(body: string | Uint8Array, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Whether `header` is the signature of `body` under `secret`. A missing or
 * malformed header is false (never an exception); well-formed ones are
 * compared in constant time.
 */
export function verifySignature(
  body: string | Uint8Array,
  header: string | undefined,
  secret: string,
): boolean {
  const hex = typeof header === 'string' ? SIGNATURE.exec(header.trim())?.[1] : undefined;
  if (hex === undefined) return false;
  const given = Buffer.from(hex, 'hex');
  const expected = createHmac('sha256', secret).update(body).digest();
  return given.length === expected.length && timingSafeEqual(given, expected);
}

// ---------------------------------------------------------------------------
// Events → alerts
// ---------------------------------------------------------------------------

/** An alert before it is stamped with time and revision. */
export type AlertDraft = Omit<AlertPayload, 'at' | 'revision'>;

/** The open alerts, by slot: an event name, or `resource_stuck:<key>`. The value tells repeats apart. */
export class OpenAlerts {
  private readonly open = new Map<string, string>();

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

  has(slot: string): boolean {
    return this.open.has(slot);
  }
}

/** The slot of an open alert. */
export function slotOf(event: FiringEvent, key?: string): string {
  return event === 'resource_stuck' ? `resource_stuck:${key ?? ''}` : event;
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
      const message = `steward froze itself (mass drift): ${e.reason}. Nothing is applied until an operator unfreezes it.`;
      return open.fire('mass_drift_frozen')
        ? [firing('mass_drift_frozen', 'critical', message, { reason: e.reason, sha: e.sha })]
        : [];
    }
    case 'frozen': {
      const message = `steward was frozen by ${e.by}: ${e.reason}. Drift is detected but not reverted.`;
      return open.fire('frozen')
        ? [firing('frozen', 'warning', message, { reason: e.reason, by: e.by })]
        : [];
    }
    case 'unfrozen':
      return (['mass_drift_frozen', 'frozen'] as const)
        .filter((slot) => open.resolve(slot))
        .map((slot) =>
          resolved('unfrozen', slot, `steward was unfrozen by ${e.by}.`, {
            by: e.by,
            approveRevision: e.approveRevision,
          }),
        );
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
    case 'mode_changed':
    case 'resource_released':
    case 'approval_spent':
      return [];
  }
}

function rejected(e: Extract<AgentEvent, { type: 'revision_rejected' }>): AlertDraft {
  const n = e.problems.length;
  const message =
    `revision ${short(e.sha)} was rejected (${n} problem${n === 1 ? '' : 's'}); ` +
    'steward keeps reconciling the last good revision.';
  const problems = e.problems.slice(0, MAX_PROBLEMS).map(formatProblem);
  return firing('revision_rejected', 'critical', message, { sha: e.sha, problems, problemCount: n });
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

// ---------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------

/** One alert on its way to one receiver. */
interface Job {
  event: string;
  body: string;
  /** Sent as X-Steward-Delivery; the same on every retry. */
  deliveryId: string;
}

type AttemptResult =
  | { kind: 'sent' }
  | { kind: 'fatal'; reason: string }
  | { kind: 'retry'; reason: string; retryAfterMs: number | undefined };

/** What a worker needs from its Alerter. */
interface WorkerContext {
  readonly retry: RetryOptions;
  readonly queueLimit: number;
  readonly log: Logger;
  readonly clock: () => number;
  readonly random: () => number;
  /** Aborted by close(): cancels requests in flight and backoff waits. */
  readonly closed: AbortSignal;
  report(event: string, outcome: AlertOutcome): void;
}

/** Full jitter: a uniform wait in [0, min(maxMs, baseMs·2^(attempt−1))). */
export function backoffMs(attempt: number, retry: RetryOptions, random: () => number): number {
  return Math.floor(random() * Math.min(retry.maxMs, retry.baseMs * 2 ** (attempt - 1)));
}

/** `Retry-After` in ms (delta-seconds or an HTTP date), or undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** 2xx is sent; 5xx, 408 and 429 are worth another try; anything else (4xx, an unfollowed 3xx) is final. */
function classify(res: Response, now: number): AttemptResult {
  if (res.status >= 200 && res.status < 300) return { kind: 'sent' };
  const reason = `HTTP ${res.status}`;
  if (res.status >= 500 || res.status === 408 || res.status === 429)
    return { kind: 'retry', reason, retryAfterMs: parseRetryAfter(res.headers.get('retry-after'), now) };
  return { kind: 'fatal', reason };
}

/** Why a request failed, without its message (which may quote the URL): a timeout, or the socket error code. */
function failureReason(e: unknown): string {
  if (!(e instanceof Error)) return 'error';
  if (e.name === 'TimeoutError') return 'timed out';
  if (e.name === 'AbortError') return 'aborted';
  const cause: unknown = e.cause;
  if (typeof cause === 'object' && cause !== null && 'code' in cause && typeof cause.code === 'string')
    return cause.code;
  return e.name;
}

/** A signal that aborts after `timeoutMs` (an unref'd timer) or when `outer` aborts. */
function attemptSignal(timeoutMs: number, outer: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  const ctl = new AbortController();
  const timeout = AbortSignal.timeout(timeoutMs);
  const onTimeout = (): void => ctl.abort(timeout.reason);
  const onClose = (): void => ctl.abort(outer.reason);
  timeout.addEventListener('abort', onTimeout, { once: true });
  outer.addEventListener('abort', onClose, { once: true });
  if (outer.aborted) onClose();
  const dispose = (): void => {
    timeout.removeEventListener('abort', onTimeout);
    outer.removeEventListener('abort', onClose);
  };
  return { signal: ctl.signal, dispose };
}

/** Waits `ms` on an unref'd timer; false (at once) when `signal` aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    timer.unref();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** One receiver: a bounded FIFO queue drained by one worker. */
class ReceiverWorker {
  private readonly queue: Job[] = [];
  private loop: Promise<void> | null = null;

  constructor(
    readonly receiver: AlertConfig,
    /** `receiver #n`: how logs name it (never by URL). */
    private readonly label: string,
    private readonly ctx: WorkerContext,
  ) {}

  /** True while an alert waits or is being delivered. */
  get busy(): boolean {
    return this.loop !== null || this.queue.length > 0;
  }

  /** Queues `job`, dropping the oldest waiting alert when the queue is full. Never blocks. */
  push(job: Job): void {
    if (this.queue.length >= this.ctx.queueLimit) {
      const oldest = this.queue.shift();
      if (oldest) {
        this.ctx.log.warn(
          { receiver: this.label, event: oldest.event },
          `alert queue of ${this.label} full: dropped the oldest`,
        );
        this.ctx.report(oldest.event, 'dropped');
      }
    }
    this.queue.push(job);
    this.start();
  }

  /** Drops every waiting alert (close()). */
  dropQueued(): void {
    const dropped = this.queue.splice(0);
    if (dropped.length > 0)
      this.ctx.log.warn(
        { receiver: this.label, count: dropped.length },
        `dropped unsent alerts of ${this.label}`,
      );
    for (const job of dropped) this.ctx.report(job.event, 'dropped');
  }

  /** Settles when the worker has nothing left to do. */
  idle(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  private start(): void {
    if (this.loop) return;
    this.loop = this.run();
  }

  /** Delivers queued alerts one by one. Never rejects. */
  private async run(): Promise<void> {
    // Start after the caller's synchronous work: handle() returns first, and alerts raised together queue together.
    // (This await also guarantees that `this.loop` is assigned before the loop can end and clear it.)
    await Promise.resolve();
    try {
      for (let job = this.queue.shift(); job; job = this.queue.shift())
        this.ctx.report(job.event, await this.deliver(job));
    } catch (e) {
      this.ctx.log.error({ receiver: this.label, err: errorMessage(e) }, 'alert worker failed');
    } finally {
      this.loop = null;
    }
    if (this.queue.length > 0 && !this.ctx.closed.aborted) this.start();
  }

  /** Tries `job` until it is sent, fails for good, runs out of attempts, or close() interrupts it. */
  private async deliver(job: Job): Promise<AlertOutcome> {
    const { retry, closed, log } = this.ctx;
    for (let attempt = 1; ; attempt++) {
      if (closed.aborted) return 'dropped';
      const result = await this.attempt(job);
      if (result.kind === 'sent') {
        log.debug({ receiver: this.label, event: job.event, attempt }, `alert sent to ${this.label}`);
        return 'sent';
      }
      if (closed.aborted) return 'dropped';
      if (result.kind === 'fatal' || attempt >= retry.attempts) {
        const fields = { receiver: this.label, event: job.event, attempts: attempt, reason: result.reason };
        log.warn(fields, `alert to ${this.label} failed: ${result.reason}`);
        return 'failed';
      }
      const waitMs =
        result.retryAfterMs === undefined
          ? backoffMs(attempt, retry, this.ctx.random)
          : Math.min(result.retryAfterMs, retry.maxMs);
      log.debug(
        { receiver: this.label, event: job.event, attempt, reason: result.reason, waitMs },
        'alert retry',
      );
      if (!(await sleep(waitMs, closed))) return 'dropped';
    }
  }

  /** One POST. Never throws. */
  private async attempt(job: Job): Promise<AttemptResult> {
    const { signal, dispose } = attemptSignal(this.receiver.timeoutMs, this.ctx.closed);
    try {
      const res = await fetch(this.receiver.url, {
        method: 'POST',
        headers: this.headers(job),
        body: job.body,
        signal,
        // A webhook that redirects is misconfigured; following it would hand the signed alert to another host.
        redirect: 'manual',
      });
      await res.body?.cancel().catch(() => undefined);
      return classify(res, this.ctx.clock());
    } catch (e) {
      return { kind: 'retry', reason: failureReason(e), retryAfterMs: undefined };
    } finally {
      dispose();
    }
  }

  private headers(job: Job): Record<string, string> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'steward',
      'X-Steward-Event': job.event,
      'X-Steward-Delivery': job.deliveryId,
    };
    if (this.receiver.secret !== null)
      headers['X-Steward-Signature'] = signBody(job.body, this.receiver.secret);
    return headers;
  }
}

// ---------------------------------------------------------------------------
// The Alerter
// ---------------------------------------------------------------------------

function checkOptions(retry: RetryOptions, queueLimit: number): void {
  if (!Number.isInteger(retry.attempts) || retry.attempts < 1)
    throw new RangeError('alerts: retry.attempts must be an integer ≥ 1');
  if (!(retry.baseMs >= 0 && retry.maxMs >= 0)) throw new RangeError('alerts: retry delays must be ≥ 0');
  if (!Number.isInteger(queueLimit) || queueLimit < 1)
    throw new RangeError('alerts: queueLimit must be an integer ≥ 1');
}

/**
 * Sends alerts for agent events to every receiver that wants them. Subscribe
 * `handle` to the agent's events; call `close()` (after `drain()` if alerts
 * should get a chance to leave) on shutdown.
 */
export class Alerter {
  private readonly workers: ReceiverWorker[];
  private readonly open = new OpenAlerts();
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private readonly clock: () => number;

  constructor(private readonly opts: AlerterOptions) {
    const retry = { ...(opts.retry ?? DEFAULT_RETRY) };
    const queueLimit = opts.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    checkOptions(retry, queueLimit);
    this.log = opts.log.child({ component: 'alerts' });
    this.clock = opts.clock ?? Date.now;
    const ctx: WorkerContext = {
      retry,
      queueLimit,
      log: this.log,
      clock: this.clock,
      random: opts.random ?? Math.random,
      closed: this.abort.signal,
      report: (event, outcome) => this.report(event, outcome),
    };
    this.workers = opts.receivers.map((r, i) => new ReceiverWorker(r, `receiver #${i + 1}`, ctx));
    for (const o of opts.initiallyOpen ?? [])
      this.open.fire(slotOf(o.event, o.key), o.event === 'revision_rejected' ? (o.key ?? '') : '');
  }

  /** Maps an agent event to alerts (or none) and enqueues them. Never blocks, never throws. */
  handle(event: AgentEvent): void {
    try {
      if (this.abort.signal.aborted) return;
      for (const draft of planAlerts(event, this.open)) this.enqueue(draft);
    } catch (e) {
      this.log.error({ event: event?.type, err: errorMessage(e) }, 'alert could not be queued');
    }
  }

  /**
   * Resolves when every queue is empty and nothing is in flight, or after
   * `timeoutMs` (default: no limit). While it waits, it keeps the process
   * alive (the backoff timers alone do not), so `await drain()` in a shutdown
   * path does not end early.
   */
  async drain(timeoutMs?: number): Promise<void> {
    const empty = (async () => {
      while (this.workers.some((w) => w.busy)) await Promise.all(this.workers.map((w) => w.idle()));
    })();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.min(timeoutMs ?? MAX_TIMEOUT_MS, MAX_TIMEOUT_MS));
    });
    try {
      await Promise.race([empty, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops the workers: requests in flight are aborted, backoff waits cancelled, pending alerts dropped (counted). */
  async close(): Promise<void> {
    if (!this.abort.signal.aborted) {
      this.abort.abort();
      for (const w of this.workers) w.dropQueued();
    }
    await Promise.all(this.workers.map((w) => w.idle()));
  }

  private enqueue(draft: AlertDraft): void {
    const targets = this.workers.filter((w) => wants(w.receiver, draft));
    if (targets.length === 0) return;
    const body = JSON.stringify(this.stamp(draft));
    for (const w of targets) w.push({ event: draft.event, body, deliveryId: randomUUID() });
  }

  private stamp(draft: AlertDraft): AlertPayload {
    const { event, status, resolves, severity, message, details } = draft;
    const at = new Date(this.clock()).toISOString();
    return {
      event,
      status,
      ...(resolves ? { resolves } : {}),
      severity,
      message,
      at,
      revision: this.revision(),
      details,
    };
  }

  private revision(): string | null {
    try {
      return this.opts.revision?.() ?? null;
    } catch {
      return null;
    }
  }

  private report(event: string, outcome: AlertOutcome): void {
    try {
      this.opts.onOutcome?.(event, outcome);
    } catch (e) {
      this.log.error({ event, outcome, err: errorMessage(e) }, 'alert outcome callback failed');
    }
  }
}
