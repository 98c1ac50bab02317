/**
 * Shared test data for the policies tests: a guardrail config with the SPEC
 * defaults, and small builders for drift and records.
 */
import type { Operation } from 'fast-json-patch';
import type { DecideDrift } from '../../policies/decide.js';
import type { GuardrailConfig, ResourceRecord } from '../../policies/types.js';

/** The SPEC §3 example, in ms. */
export function guardrails(overrides: Partial<GuardrailConfig> = {}): GuardrailConfig {
  return {
    maxActionsPerCycle: 10,
    massDrift: { maxDrifted: 50, maxDriftedPercent: 30, minManaged: 5 },
    rateLimit: { actionsPerMinute: 60, burst: 10 },
    backoff: { baseMs: 30_000, factor: 2, maxMs: 1_800_000, jitter: 0.2 },
    nonConvergence: { alertAfterCycles: 3 },
    soak: { observeCycles: 1 },
    fieldPolicy: {},
    ...overrides,
  };
}

export function replace(path: string, value: unknown = 'x'): Operation {
  return { op: 'replace', path, value };
}

/** A File drift named `name` that changes `/spec/content` unless other ops are given. */
export function drift(
  name: string,
  ops: Operation[] = [replace('/spec/content')],
  extra: { kind?: string; resourcePolicy?: 'revert' | 'report'; disruptive?: readonly string[] } = {},
): DecideDrift {
  const kind = extra.kind ?? 'File';
  return {
    key: `${kind}/${name}`,
    kind,
    name,
    id: name,
    patch: ops,
    disruptive: extra.disruptive ?? [],
    ...(extra.resourcePolicy === undefined ? {} : { resourcePolicy: extra.resourcePolicy }),
  };
}

export function record(fields: Partial<ResourceRecord> = {}): ResourceRecord {
  return { attempts: 0, cyclesActedDrifted: 0, stuck: false, ...fields };
}

/** Freezes a value and everything under it, so a test fails if code under test mutates its input. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
