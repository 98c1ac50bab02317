/**
 * The http check: `GET url` passes when the status is `expectStatus`. Status
 * only: the body is drained (at most MAX_DRAIN_BYTES, then the connection is
 * dropped) and never read into a detail or a log; the answer must be complete
 * within the timeout. Redirects are not followed (a 301 is a 301).
 */
import { type Deadline, deadline, failure, get } from './request.js';
import type { HealthCheckSpec, HealthProbeResult } from './types.js';

/** Body bytes drained from a health endpoint before the connection is dropped. */
export const MAX_DRAIN_BYTES = 64 * 1024;

export type HttpCheckSpec = Extract<HealthCheckSpec, { kind: 'http' }>;

export async function runHttpCheck(spec: HttpCheckSpec, stop?: AbortSignal): Promise<HealthProbeResult> {
  const d: Deadline = deadline(spec.timeoutMs, stop);
  try {
    const { status } = await get(new URL(spec.url), d.signal, { maxBody: MAX_DRAIN_BYTES, read: false });
    if (status === spec.expectStatus) return { ok: true, detail: `HTTP ${status}` };
    const redirect = status >= 300 && status < 400 ? ' (redirects are not followed)' : '';
    return { ok: false, detail: `HTTP ${status}, expected ${spec.expectStatus}${redirect}` };
  } catch (e) {
    return { ok: false, detail: failure(e, d) };
  } finally {
    d.done();
  }
}
