/**
 * Rate limit (SPEC §2.7): a token bucket of actions per minute, across cycles.
 *
 * Protects the providers' APIs (EC2 throttles mutating calls) and bounds how
 * fast any change — even an approved one — can spread, over time and not only
 * per cycle. The bucket is plain data passed in and out, so it can be
 * persisted and tested without a clock.
 */
import type { GuardrailConfig, TokenBucket } from './types.js';

/** Tolerance for float accumulation, so 2.9999999999 tokens count as 3. */
const EPSILON = 1e-9;

/**
 * The bucket at `now`. A missing bucket starts full (`burst` tokens). Tokens
 * refill at `actionsPerMinute / 60000` per ms, capped at `burst`. A clock that
 * went backwards adds nothing and re-anchors `updatedAt` at `now`, so only
 * time that really passes after the jump is credited (and a large backwards
 * step does not stall the bucket until the clock catches up).
 */
export function refill(
  bucket: TokenBucket | null,
  now: number,
  config: GuardrailConfig['rateLimit'],
): TokenBucket {
  const burst = Math.max(0, config.burst);
  if (bucket === null) return { tokens: burst, updatedAt: now };
  const elapsed = now - bucket.updatedAt;
  const rate = Math.max(0, config.actionsPerMinute) / 60_000;
  const added = elapsed > 0 ? elapsed * rate : 0;
  return { tokens: Math.min(burst, Math.max(0, bucket.tokens) + added), updatedAt: now };
}

/**
 * Takes up to `n` whole tokens. Grants `min(n, floor(tokens))`; the fractional
 * remainder stays in the bucket for the next refill. Call `refill` first.
 */
export function take(bucket: TokenBucket, n: number): { granted: number; bucket: TokenBucket } {
  const wanted = Math.max(0, Math.floor(n));
  const available = Math.max(0, Math.floor(bucket.tokens + EPSILON));
  const granted = Math.min(wanted, available);
  if (granted === 0) return { granted, bucket }; // nothing taken: the same bucket
  return { granted, bucket: { tokens: Math.max(0, bucket.tokens - granted), updatedAt: bucket.updatedAt } };
}
