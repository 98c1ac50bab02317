/** JSON schemas of the admin API bodies and queries: unknown fields are rejected, sizes bounded. */

export const SHA = { type: 'string', pattern: '^[0-9a-f]{40}$', description: 'a full commit SHA' } as const;

export const freezeBody = {
  type: 'object',
  additionalProperties: false,
  required: ['reason'],
  properties: { reason: { type: 'string', minLength: 1, maxLength: 500 } },
} as const;

export const unfreezeBody = {
  type: 'object',
  additionalProperties: false,
  properties: { approveRevision: SHA },
} as const;

export const modeBody = {
  type: 'object',
  additionalProperties: false,
  required: ['mode'],
  properties: { mode: { type: 'string', enum: ['observe', 'enforce'] } },
} as const;

export const auditQuery = {
  type: 'object',
  additionalProperties: false,
  // Query strings are text: validated as text (1-1000) rather than coerced, so bodies are never coerced either.
  properties: {
    limit: { type: 'string', pattern: '^(1000|[1-9][0-9]{0,2})$', description: '1-1000, default 100' },
  },
} as const;

export const emptyQuery = { type: 'object', additionalProperties: false, properties: {} } as const;

export const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;
