/**
 * The in-memory stand-ins for a provider and the state store that the
 * agent-overhead benchmarks run the real reconciler with: no I/O.
 */
import type { PersistedState, StateStore } from '../agent/state/types.js';
import { fileKind } from '../providers/file/kind.js';
import type { Provider } from '../providers/types.js';
import type { Fleet } from './synthetic.js';

/** A provider that serves prepared observations and applies instantly: no I/O. */
export function memoryProvider(fleet: Fleet): Provider {
  return {
    name: 'file',
    kinds: [fileKind],
    observe: async () => fleet.observed,
    apply: async (actions) =>
      actions.map((a) => ({
        key: a.resource.key,
        id: a.resource.spec['path'] as string,
        outcome: 'applied' as const,
      })),
  };
}

/** A state store that keeps nothing (load is never called by the benchmarks). */
export const noopStore: StateStore = {
  load: async (): Promise<PersistedState> => {
    throw new Error('not used by the benchmark');
  },
  save: async () => {},
  appendAudit: async () => {},
  readAudit: async () => ({ records: [], skipped: [] }),
};
