/**
 * The Alerter wires planning to delivery: it turns each agent event into
 * alerts (plan.ts), stamps them, and queues each on the worker of every
 * receiver that wants it (deliver.ts). It owns the close signal and the
 * drain/close lifecycle; it never blocks the agent loop and never throws.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { errorMessage } from '../../core/errors.js';
import type { AlertConfig } from '../config.js';
import type { AgentEvent } from '../events.js';
import type { Logger } from '../log.js';
import { type AlertOutcome, type DeliveryContext, ReceiverWorker, type RetryOptions } from './deliver.js';
import { type AlertDraft, type OpenAlert, OpenAlerts, planAlerts, stamp, wants } from './plan.js';
import { nodeCrypto } from '../../core/builtins.js';

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

const DEFAULT_RETRY: Readonly<RetryOptions> = Object.freeze({ attempts: 5, baseMs: 500, maxMs: 30_000 });
const DEFAULT_QUEUE_LIMIT = 100;
/** The longest delay a timer takes (about 24.8 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

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
  private readonly open: OpenAlerts;
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private readonly clock: () => number;

  constructor(private readonly opts: AlerterOptions) {
    const retry = { ...(opts.retry ?? DEFAULT_RETRY) };
    const queueLimit = opts.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    checkOptions(retry, queueLimit);
    this.log = opts.log.child({ component: 'alerts' });
    this.clock = opts.clock ?? Date.now;
    const ctx: DeliveryContext = {
      retry,
      queueLimit,
      log: this.log,
      clock: this.clock,
      random: opts.random ?? Math.random,
      closed: this.abort.signal,
      report: (event, outcome) => this.report(event, outcome),
    };
    this.workers = opts.receivers.map((r, i) => new ReceiverWorker(r, `receiver #${i + 1}`, ctx));
    this.open = new OpenAlerts(opts.initiallyOpen);
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
    const done = new AbortController();
    const expired = delay(Math.min(timeoutMs ?? MAX_TIMEOUT_MS, MAX_TIMEOUT_MS), undefined, {
      signal: done.signal,
    }).catch(() => undefined);
    try {
      await Promise.race([empty, expired]);
    } finally {
      done.abort();
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
    const body = JSON.stringify(stamp(draft, this.clock(), this.revision()));
    for (const w of targets) w.push({ event: draft.event, body, deliveryId: nodeCrypto().randomUUID() });
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
