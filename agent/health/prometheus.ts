/**
 * The prometheus check: one instant query, `GET <url>/api/v1/query?query=…`.
 *
 * The rule (docs/health.md): it passes when the result is a non-empty vector
 * whose samples are all non-zero, or a scalar that is not zero. So write the
 * healthy condition: a comparison such as `sum(rate(http_5xx[1m])) < 1`
 * returns an empty vector while it is false, and `up == 1` keeps only the
 * healthy series. Everything else fails, each with its own detail: an empty
 * vector, a zero (or NaN) sample, a matrix or string result, a Prometheus
 * error (its `errorType`), an answer that is not the Prometheus API, and any
 * failure to ask (refused, timeout).
 */
import { deadline, failure, get } from './request.js';
import type { HealthCheckSpec, HealthProbeResult } from './types.js';

/** Largest query answer read (a vector of many series); past it the check fails. */
export const MAX_ANSWER_BYTES = 1024 * 1024;

/** Longest Prometheus error message quoted in a detail. */
const MAX_ERROR_CHARS = 160;

export type PrometheusCheckSpec = Extract<HealthCheckSpec, { kind: 'prometheus' }>;

/** `<base>/api/v1/query?query=…`, keeping a path prefix the base URL has (`http://h/prometheus`). */
export function queryUrl(base: string, query: string): URL {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/api/v1/query`;
  url.search = '';
  url.searchParams.set('query', query);
  return url;
}

export async function runPrometheusCheck(
  spec: PrometheusCheckSpec,
  stop?: AbortSignal,
): Promise<HealthProbeResult> {
  const d = deadline(spec.timeoutMs, stop);
  let status: number;
  let body: Buffer;
  try {
    const answer = await get(queryUrl(spec.url, spec.query), d.signal, {
      maxBody: MAX_ANSWER_BYTES,
      read: true,
      accept: 'application/json',
    });
    if (answer.tooLarge)
      return { ok: false, detail: `the answer is larger than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB` };
    status = answer.status;
    body = answer.body;
  } catch (e) {
    return { ok: false, detail: failure(e, d) };
  } finally {
    d.done();
  }
  return judge(status, body);
}

interface ApiAnswer {
  status?: unknown;
  errorType?: unknown;
  error?: unknown;
  data?: { resultType?: unknown; result?: unknown };
}

/** The verdict on an answer of the query API (exported for tests of the rule). */
export function judge(httpStatus: number, body: Buffer): HealthProbeResult {
  let a: ApiAnswer;
  try {
    a = JSON.parse(body.toString('utf8')) as ApiAnswer;
  } catch {
    return { ok: false, detail: `HTTP ${httpStatus}: not a Prometheus API answer` };
  }
  if (typeof a !== 'object' || a === null)
    return { ok: false, detail: `HTTP ${httpStatus}: not a Prometheus API answer` };
  if (a.status === 'error') {
    const type = typeof a.errorType === 'string' ? a.errorType : 'unknown';
    return { ok: false, detail: `Prometheus error ${type}: ${shortError(a.error)}` };
  }
  if (a.status !== 'success' || httpStatus !== 200)
    return { ok: false, detail: `HTTP ${httpStatus}: not a Prometheus API answer` };
  const type = a.data?.resultType;
  const result = a.data?.result;
  if (type === 'scalar' && Array.isArray(result)) {
    const v = Number(result[1]);
    if (Number.isNaN(v)) return { ok: false, detail: 'scalar NaN' };
    return v !== 0 ? { ok: true, detail: `scalar ${v}` } : { ok: false, detail: 'scalar 0' };
  }
  if (type === 'vector' && Array.isArray(result)) return vector(result);
  return {
    ok: false,
    detail: `the result is a ${typeof type === 'string' ? type : 'unknown type'}: write an instant query that returns a vector or a scalar`,
  };
}

function vector(samples: unknown[]): HealthProbeResult {
  if (samples.length === 0)
    return { ok: false, detail: 'empty result: the condition is false, or no series matches' };
  const values = samples.map((s) => Number((s as { value?: unknown[] } | null)?.value?.[1]));
  const bad = values.filter((v) => v === 0 || Number.isNaN(v)).length;
  const n = values.length;
  const series = `${n} series`;
  if (bad === 0) return { ok: true, detail: n === 1 ? `value ${values[0]}` : `${series}, all non-zero` };
  return { ok: false, detail: n === 1 ? `value ${values[0]}` : `${bad} of ${series} are zero or NaN` };
}

/** Prometheus's own message, on one line and short (it names the query, which is config, not a secret). */
function shortError(e: unknown): string {
  const text = typeof e === 'string' ? e.replace(/\s+/g, ' ').trim() : 'no message';
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS)}…` : text;
}
