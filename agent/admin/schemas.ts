/**
 * The admin API's bodies and queries, declared with TypeBox and checked by the
 * same tooling as the config and the state file (core/schema.ts: ajv, all
 * errors, no coercion, strict, messages that never echo a string): unknown
 * fields are rejected, sizes bounded.
 */
import { Type } from 'typebox';

export const SHA = Type.String({ pattern: '^[0-9a-f]{40}$', description: 'a full commit SHA' });

export const freezeBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 500 }) },
  { additionalProperties: false },
);

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
