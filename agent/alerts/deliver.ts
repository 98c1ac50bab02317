/**
 * Alert delivery to ONE receiver: a bounded FIFO queue drained by one worker,
 * so a dead receiver delays only its own alerts and one receiver's alerts
 * arrive in order. Each alert is a JSON POST, signed (core/hmac.ts) when the
 * receiver has a secret, retried with exponential backoff and full jitter on
 * 5xx, 408, 429, network errors and timeouts (Retry-After honoured, capped).
 * The delivery id stays the same across retries, so a receiver can
 * de-duplicate. Receiver URLs and secrets are never logged: a receiver is
 * named by its label (`receiver #1`).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { errorMessage } from '../../core/errors.js';
import { sign } from '../../core/hmac.js';
import type { AlertConfig } from '../config.js';
import type { Logger } from '../log.js';

/** The final outcome of one alert at one receiver (steward_alerts_total{outcome}). */
export type AlertOutcome = 'sent' | 'failed' | 'dropped';

export interface RetryOptions {
  /** Tries in all, the first included (≥ 1). */
  attempts: number;
  /** Cap of the first backoff; doubles with every retry. */
  baseMs: number;
  /** Cap of any wait, Retry-After included. */
  maxMs: number;
}

/** One alert on its way to one receiver. */
interface Job {
  event: string;
  /** The exact bytes sent (and signed). */
  body: string;
  /** Sent as X-Steward-Delivery; the same on every retry. */
  deliveryId: string;
}

/** What a worker needs from its Alerter. */
export interface DeliveryContext {
  readonly retry: RetryOptions;
  readonly queueLimit: number;
  readonly log: Logger;
  readonly clock: () => number;
  readonly random: () => number;
  /** Aborted by close(): cancels requests in flight and backoff waits. */
  readonly closed: AbortSignal;
  report(event: string, outcome: AlertOutcome): void;
}

type AttemptResult =
  | { kind: 'sent' }
  | { kind: 'fatal'; reason: string }
  | { kind: 'retry'; reason: string; retryAfterMs: number | undefined };

/** Full jitter: a uniform wait in [0, min(maxMs, baseMs·2^(attempt−1))). */
function backoffMs(attempt: number, retry: RetryOptions, random: () => number): number {
  return Math.floor(random() * Math.min(retry.maxMs, retry.baseMs * 2 ** (attempt - 1)));
}

/** `Retry-After` in ms (delta-seconds or an HTTP date), or undefined when absent or unreadable. */
function parseRetryAfter(value: string | null, now: number): number | undefined {
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

/** Why a request failed, without its message (which may quote the URL): close(), or the socket error code. */
function failureReason(e: unknown): string {
  if (!(e instanceof Error)) return 'error';
  if (e.name === 'AbortError') return 'aborted';
  const cause: unknown = e.cause;
  if (typeof cause === 'object' && cause !== null && 'code' in cause && typeof cause.code === 'string')
    return cause.code;
  return e.name;
}

/** Waits `ms` on an unref'd timer: true, or false (at once) when `signal` aborts first. */
const wait = (ms: number, signal: AbortSignal): Promise<boolean> =>
  delay(ms, true, { signal, ref: false }).catch(() => false);

/** One receiver: a bounded FIFO queue drained by one worker. */
export class ReceiverWorker {
  private readonly queue: Job[] = [];
  private loop: Promise<void> | null = null;

  constructor(
    readonly receiver: AlertConfig,
    /** `receiver #n`: how logs name it (never by URL). */
    private readonly label: string,
    private readonly ctx: DeliveryContext,
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
      if (!(await wait(waitMs, closed))) return 'dropped';
    }
  }

  /** One POST, cut short by the receiver's timeout or by close(). Never throws. */
  private async attempt(job: Job): Promise<AttemptResult> {
    // Held here until the attempt ends and read below: some Node versions collect a timeout signal
    // that only an AbortSignal.any() composite refers to, and then it never fires (nodejs/node#57736).
    const timeout = AbortSignal.timeout(this.receiver.timeoutMs);
    try {
      const res = await fetch(this.receiver.url, {
        method: 'POST',
        headers: this.headers(job),
        body: job.body,
        signal: AbortSignal.any([this.ctx.closed, timeout]),
        // A webhook that redirects is misconfigured; following it would hand the signed alert to another host.
        redirect: 'manual',
      });
      await res.body?.cancel().catch(() => undefined);
      return classify(res, this.ctx.clock());
    } catch (e) {
      const reason = timeout.aborted && !this.ctx.closed.aborted ? 'timed out' : failureReason(e);
      return { kind: 'retry', reason, retryAfterMs: undefined };
    }
  }

  private headers(job: Job): Record<string, string> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'steward',
      'X-Steward-Event': job.event,
      'X-Steward-Delivery': job.deliveryId,
    };
    if (this.receiver.secret !== null) headers['X-Steward-Signature'] = sign(job.body, this.receiver.secret);
    return headers;
  }
}
