/**
 * The guardrails' config (`guardrails:` in steward.yaml), declared once: the
 * schema gives the type, the defaults and the validation; {@link guardrailConfig}
 * turns the durations into the milliseconds the policies compute with.
 */
import type { Static } from 'typebox';
import * as Type from 'typebox/type';
import { formatDuration, parseDuration } from '../core/duration.js';
import { durationFormat, type Formats, type Issue, label, MAX_INT } from '../core/schema.js';
import { FORBIDDEN_KEYS, type PathSegment } from '../core/yaml.js';

export const MODES = Object.freeze(['observe', 'enforce'] as const);
export const ModeSchema = Type.Enum([...MODES]);
/** `observe` detects and reports; `enforce` also acts. */
export type Mode = Static<typeof ModeSchema>;

export const FIELD_POLICIES = Object.freeze(['revert', 'report'] as const);
export const FieldPolicySchema = Type.Enum([...FIELD_POLICIES]);
/** What steward does about drift on a field: put it back, or only report it. */
export type FieldPolicy = Static<typeof FieldPolicySchema>;

/** An integer in [min, MAX_INT]. */
const Int = (minimum: number, dflt: number) => Type.Integer({ minimum, maximum: MAX_INT, default: dflt });

/** Why a field-policy key is not a JSON pointer into spec, or undefined when it is one. */
function pointerProblem(pointer: string): string | undefined {
  if (!pointer.startsWith('/spec/') || pointer.length === '/spec/'.length) {
    return 'must be a JSON pointer into the spec, e.g. /spec/instanceType';
  }
  const segments = pointer.slice(1).split('/');
  if (segments.some((s) => s === '')) return 'must not contain empty segments (//) or end with /';
  if (segments.some((s) => /~(?![01])/.test(s)))
    return 'has an invalid escape: in a JSON pointer "~" is written ~0 and "/" is ~1';
  if (segments.some((s) => FORBIDDEN_KEYS.has(s))) return 'must not name __proto__, constructor or prototype';
  return undefined;
}

/** The formats the guardrails schema uses. */
export const GUARDRAIL_FORMATS: Formats = Object.freeze({
  duration: durationFormat(1),
  'resource-kind': {
    check: (s) =>
      /^[A-Z][A-Za-z0-9]*$/.test(s) ? undefined : 'is not a resource kind (e.g. Ec2Instance, File)',
  },
  'spec-pointer': { check: pointerProblem },
});

const Duration = (dflt: string) => Type.String({ format: 'duration', default: dflt });

/** A record with keys of a format: every key checked, none dropped. */
const RecordOf = <T extends Parameters<typeof Type.Record>[1]>(keyFormat: string, value: T, dflt?: object) =>
  Type.Record(Type.String(), value, {
    additionalProperties: false,
    propertyNames: { format: keyFormat },
    ...(dflt ? { default: dflt } : {}),
  });

/** `guardrails:` as written. */
export const GuardrailsSchema = Type.Object(
  {
    maxActionsPerCycle: Int(0, 10),
    massDrift: Type.Object(
      {
        maxDrifted: Int(0, 50),
        maxDriftedPercent: Type.Number({ exclusiveMinimum: 0, maximum: 100, default: 30 }),
        minManaged: Int(0, 5),
      },
      { additionalProperties: false, default: {} },
    ),
    rateLimit: Type.Object(
      {
        actionsPerMinute: Type.Number({ exclusiveMinimum: 0, default: 60 }),
        burst: Int(1, 10),
      },
      { additionalProperties: false, default: {} },
    ),
    backoff: Type.Object(
      {
        base: Duration('30s'),
        factor: Type.Number({ minimum: 1, default: 2 }),
        max: Duration('30m'),
        jitter: Type.Number({ minimum: 0, maximum: 1, default: 0.2 }),
      },
      { additionalProperties: false, default: {} },
    ),
    nonConvergence: Type.Object(
      { alertAfterCycles: Int(1, 3) },
      { additionalProperties: false, default: {} },
    ),
    soak: Type.Object({ observeCycles: Int(0, 1) }, { additionalProperties: false, default: {} }),
    /** kind → JSON pointer (`/spec/…`) → policy; overrides the provider's defaults for those fields. */
    fieldPolicy: RecordOf('resource-kind', RecordOf('spec-pointer', FieldPolicySchema), {}),
  },
  { additionalProperties: false, default: {} },
);

export type GuardrailsInput = Static<typeof GuardrailsSchema>;

type Backoff = GuardrailsInput['backoff'];

/** What the policies take: the guardrails as written, with the backoff durations in milliseconds. */
export type GuardrailConfig = Omit<GuardrailsInput, 'backoff'> & {
  backoff: Omit<Backoff, 'base' | 'max'> & { baseMs: number; maxMs: number };
};

/** The typed step from the validated input to what the policies take. */
export function guardrailConfig(g: GuardrailsInput): GuardrailConfig {
  const { base, factor, max, jitter } = g.backoff;
  return { ...g, backoff: { baseMs: parseDuration(base), factor, maxMs: parseDuration(max), jitter } };
}

/**
 * What the schema cannot say: `backoff.max` must not be below `base`.
 * `backoff` is the validated value (defaults filled), `written` what the file
 * says, so the problem is placed at the key that was written.
 */
export function checkBackoff(
  backoff: Backoff,
  written: Readonly<Record<string, unknown>>,
  path: readonly PathSegment[],
): Issue[] {
  const baseMs = parseDuration(backoff.base);
  const maxMs = parseDuration(backoff.max);
  if (maxMs >= baseMs) return [];
  const at = [...path, written['max'] !== undefined ? 'max' : 'base'];
  const why = `max (${formatDuration(maxMs)}) must not be below base (${formatDuration(baseMs)})`;
  return [{ path: at, message: `${label(at)}: ${why}` }];
}
