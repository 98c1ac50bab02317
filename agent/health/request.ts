/**
 * What the checks share: a deadline (a check's timeout, joined with the
 * runner's stop), and the one bounded GET the http and prometheus checks send.
 *
 * The GET follows no redirect (a 3xx is an answer like any other), opens a
 * fresh connection (no pooled socket outlives the check), reads at most
 * `maxBody` bytes and then drops the connection, and is aborted with the
 * deadline. Bodies are never logged; a failure is described by its errno
 * code, never by a URL (URLs may carry tokens).
 */
import { nodeHttp, nodeHttps } from '../../core/builtins.js';
import { formatDuration } from '../../core/duration.js';

/** A check's deadline: aborted when its timeout passes or the runner stops. */
export interface Deadline {
  readonly signal: AbortSignal;
  /** True once the timeout (not a stop) aborted it. */
  timedOut(): boolean;
  /** `2s`, for details. */
  readonly shown: string;
  /** Clears the timer and the listener on `stop` (call once the run is over). */
  done(): void;
}

/**
 * A deadline of its own timer and controller rather than AbortSignal.timeout
 * and AbortSignal.any: everything it holds is released by `done()`, so a
 * daemon that runs a check every few seconds for months keeps nothing (some
 * Node releases kept composite signals alive as long as their long-lived source).
 */
export function deadline(timeoutMs: number, stop?: AbortSignal): Deadline {
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort();
  }, timeoutMs);
  const onStop = () => ctl.abort();
  if (stop?.aborted) ctl.abort();
  else stop?.addEventListener('abort', onStop, { once: true });
  return {
    signal: ctl.signal,
    timedOut: () => timedOut,
    shown: formatDuration(timeoutMs),
    done() {
      clearTimeout(timer);
      stop?.removeEventListener('abort', onStop);
    },
  };
}

/** The detail of a run that the runner's stop (not its timeout) interrupted. */
export const STOPPED = 'not finished: the agent is stopping';

export interface Answer {
  status: number;
  /** The body as read: empty unless `read`, and never more than `maxBody` bytes. */
  body: Buffer;
  /** True when the body was longer than `maxBody` (the rest was not read). */
  tooLarge: boolean;
}

/**
 * GETs `url` once and settles once the body has ended or passed `maxBody`
 * (the connection is then dropped), so nothing of the request outlives the
 * deadline. `read: false` drains the body without keeping it. Rejects with
 * the request's error (its `code` says why: ECONNREFUSED, ABORT_ERR on the
 * deadline, …).
 */
export function get(
  url: URL,
  signal: AbortSignal,
  opts: { maxBody: number; read: boolean; accept?: string },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? nodeHttps() : nodeHttp();
    const req = client.request(url, {
      method: 'GET',
      agent: false,
      signal,
      headers: { 'user-agent': 'steward-health', accept: opts.accept ?? '*/*', connection: 'close' },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let n = 0;
      let tooLarge = false;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > opts.maxBody) {
          tooLarge = true;
          res.destroy();
          return;
        }
        if (opts.read) chunks.push(c);
      });
      res.on('error', () => undefined); // reported through the request, or irrelevant once settled
      const done = () => resolve({ status, body: Buffer.concat(chunks), tooLarge });
      res.on('end', done);
      res.on('close', () => (tooLarge || res.complete ? done() : reject(closedEarly(signal))));
    });
    req.end();
  });
}

function closedEarly(signal: AbortSignal): Error {
  if (signal.aborted) return Object.assign(new Error('aborted'), { code: 'ABORT_ERR' });
  return Object.assign(new Error('the connection closed before the answer was complete'), {
    code: 'ECONNRESET',
  });
}

const NETWORK: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EPIPE: 'connection closed',
  HPE_INVALID_CONSTANT: 'not an HTTP answer',
};

/** Why a GET failed, for a check's detail: the deadline, or the errno code with a few words. */
export function failure(e: unknown, d: Deadline): string {
  if (d.timedOut()) return `no answer within ${d.shown}`;
  if (d.signal.aborted) return STOPPED;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return 'request failed';
  const text = NETWORK[code] ?? (code.startsWith('HPE_') ? 'not an HTTP answer' : undefined);
  if (text) return `${text} (${code})`;
  // TLS problems carry their OpenSSL-style code (CERT_HAS_EXPIRED, DEPTH_ZERO_SELF_SIGNED_CERT, …)
  return /CERT|TLS|SSL/.test(code) ? `TLS: ${code}` : code;
}
