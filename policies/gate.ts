/**
 * Freeze switch and observe-only mode (SPEC §2.3).
 *
 * Protects against acting when a human (or the mass-drift halt) said stop, or
 * when the agent runs in `observe` mode to be evaluated. Drift is still
 * detected and reported; only acting is gated.
 */
import type { Freeze, Mode } from './types.js';

export type GateVerdict = { act: true } | { act: false; reason: 'frozen' | 'observe' };

/** May the agent act at all this cycle? A freeze wins over observe mode in the reason. */
export function gate(input: { readonly mode: Mode; readonly freeze: Freeze | null }): GateVerdict {
  if (input.freeze !== null) return { act: false, reason: 'frozen' };
  if (input.mode === 'observe') return { act: false, reason: 'observe' };
  return { act: true };
}
