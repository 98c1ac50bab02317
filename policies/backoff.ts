/**
 * Per-resource backoff (SPEC §2.6).
 *
 * Protects the resource and its API from a tight apply loop when an apply
 * fails or does not stick (another actor keeps changing the resource back):
 * each further try waits exponentially longer, capped, with jitter so that
 * many resources that failed together do not retry in lock-step.
 *
 * Randomness is injected (`random`), so a test or a replay can seed it.
 */
import type { GuardrailConfig, ResourceRecord } from './types.js';

/**
 * Delay in ms before the next try after `attempts` consecutive unsuccessful
 * attempts: `min(maxMs, baseMs·factor^(attempts−1))`, then jittered by a
 * fraction in `[−jitter, +jitter)` drawn from `random()` (in `[0, 1)`), then
 * clamped to `[0, maxMs]` — the cap applies AFTER jitter, so the delay never
 * exceeds `maxMs`. Rounded to whole ms. `attempts <= 0` → 0.
 */
export function backoffDelay(
  attempts: number,
  config: GuardrailConfig['backoff'],
  random: () => number,
): number {
  if (attempts <= 0 || config.baseMs <= 0 || config.maxMs <= 0) return 0;
  const exponential = config.baseMs * config.factor ** (attempts - 1);
  const raw = Number.isFinite(exponential) ? Math.min(config.maxMs, exponential) : config.maxMs;
  const spread = (random() * 2 - 1) * config.jitter;
  return clamp(Math.round(raw * (1 + spread)), 0, config.maxMs);
}

/** True while the record's backoff has not elapsed at `now`. */
export function inBackoff(record: Readonly<ResourceRecord>, now: number): boolean {
  return record.nextAttemptAt !== undefined && now < record.nextAttemptAt;
}

/**
 * A small deterministic PRNG (mulberry32): the same seed gives the same
 * sequence of numbers in `[0, 1)`. For tests and reproducible jitter; not for
 * anything secret.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
