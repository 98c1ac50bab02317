/**
 * Revision soak (SPEC §2.4).
 *
 * Protects against acting on a revision in the very cycle it appears: a new
 * revision first gets `observeCycles` observe-only cycles, so its drift is
 * visible (plan, metrics, /v1/drift, a mass-drift halt) before anything is
 * changed.
 */

/** Soak progress of the current revision. */
export interface SoakState {
  sha: string;
  /** Cycles completed on this sha before the current one. */
  cyclesObserved: number;
}

export interface SoakStep {
  /** The state to persist after this cycle. */
  state: SoakState;
  /** True when this cycle must be observe-only. */
  soaking: boolean;
}

/**
 * Advances the soak by one cycle on `sha`. A sha different from the state's
 * (including a return to an older one) starts again at 0. The cycle may act
 * only when at least `observeCycles` cycles were observed on this sha before
 * it: `observeCycles` 0 acts at once, 1 keeps the first cycle observe-only.
 * Once the soak is over the count stops (the same state is returned): a
 * steady cycle has nothing of it to persist. Pure: the input state is not
 * modified.
 */
export function soakStep(state: SoakState | null, sha: string, observeCycles: number): SoakStep {
  const before = state !== null && state.sha === sha ? state.cyclesObserved : 0;
  if (state !== null && state.sha === sha && before > observeCycles) return { state, soaking: false };
  return { state: { sha, cyclesObserved: before + 1 }, soaking: before < observeCycles };
}
