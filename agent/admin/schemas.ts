/**
 * The admin API's bodies and queries, declared with TypeBox and checked by the
 * same tooling as the config and the state file (core/schema.ts: ajv, all
 * errors, no coercion, strict, messages that never echo a string): unknown
 * fields are rejected, sizes bounded.
 */
import * as Type from 'typebox/type';
import { formatDuration, parseDuration } from '../../core/duration.js';
import type { RequestedEnd } from '../agent.js';

export const SHA = Type.String({ pattern: '^[0-9a-f]{40}$', description: 'a full commit SHA' });

const Reason = () => Type.String({ minLength: 1, maxLength: 500 });
const ForDuration = () =>
  Type.String({
    minLength: 1,
    maxLength: 32,
    description: 'a duration such as 30m or 2h (units ms, s, m, h)',
  });

export const freezeBody = Type.Object(
  {
    reason: Reason(),
    until: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 40,
        description: 'ISO 8601 time with a zone: ends by itself then',
      }),
    ),
    for: Type.Optional(ForDuration()),
  },
  { additionalProperties: false },
);

export const windowOverrideBody = Type.Object(
  { reason: Reason(), for: ForDuration() },
  { additionalProperties: false },
);

/** Longest freeze with an end (longer: leave the end out and unfreeze by hand), and longest window override. */
export const MAX_FREEZE_MS = 720 * 3_600_000;
export const MAX_OVERRIDE_MS = 24 * 3_600_000;

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The end that `until` or `for` asks for (null when neither is given), or why it is refused (a 400
 * message): both given, a duration that does not parse or is not above 0, a time without a zone, in the
 * past, or beyond `maxMs` from now.
 */
export function requestedEnd(
  body: { until?: string | undefined; for?: string | undefined },
  now: number,
  maxMs: number,
): { end: RequestedEnd } | { problem: string } {
  const max = formatDuration(maxMs);
  const tooLong = (key: string) => ({
    problem: `${key}: at most ${max} from now; for longer, leave the end out and lift it by hand`,
  });
  if (body.until !== undefined && body.for !== undefined)
    return { problem: 'give "until" or "for", not both' };
  if (body.for !== undefined) {
    let ms: number;
    try {
      ms = parseDuration(body.for);
    } catch (e) {
      return { problem: `for: ${e instanceof Error ? e.message : String(e)}` };
    }
    if (ms <= 0) return { problem: 'for: must be longer than 0s (e.g. 30m)' };
    return ms > maxMs ? tooLong('for') : { end: { forMs: ms } };
  }
  if (body.until !== undefined) {
    const t = ISO_WITH_ZONE.test(body.until) ? Date.parse(body.until) : Number.NaN;
    if (Number.isNaN(t))
      return { problem: 'until: expected an ISO 8601 time with a zone, e.g. 2026-12-24T18:00:00Z' };
    if (t <= now)
      return {
        problem: `until: ${new Date(t).toISOString()} is not in the future (now ${new Date(now).toISOString()})`,
      };
    return t - now > maxMs ? tooLong('until') : { end: { until: t } };
  }
  return { end: null };
}

export const unfreezeBody = Type.Object(
  { approveRevision: Type.Optional(SHA) },
  { additionalProperties: false },
);

export const modeBody = Type.Object(
  { mode: Type.Union([Type.Literal('observe'), Type.Literal('enforce')]) },
  { additionalProperties: false },
);

// Query strings are text: validated as text (1-1000) rather than coerced, so bodies are never coerced either.
export const auditQuery = Type.Object(
  {
    limit: Type.Optional(
      Type.String({ pattern: '^(1000|[1-9][0-9]{0,2})$', description: '1-1000, default 100' }),
    ),
  },
  { additionalProperties: false },
);

export const emptyQuery = Type.Object({}, { additionalProperties: false });

export const errorSchema = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() }),
});
