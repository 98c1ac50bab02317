/**
 * The per-resource records during one cycle: a map the cycle updates in place (fold, record, release) that
 * knows whether anything was set or deleted. A cycle that changes no record — the steady state — hands the
 * very records object it was given back to the store, which then has nothing to compare (issue 12: a
 * converged fleet costs no copy and no walk of every record per cycle). The map itself is built anew each
 * cycle and not kept between cycles: at 100k records, keeping it would cost its table's memory for good.
 */
import type { ResourceRecord } from '../policies/types.js';
import type { PersistedState } from './state/types.js';

type RecordsObject = PersistedState['resources'];

export class CycleRecords extends Map<string, ResourceRecord> {
  #changed = false;

  /** The records of `resources`, built without an intermediate [key, record] pair per resource. */
  static of(resources: RecordsObject): CycleRecords {
    const m = new CycleRecords();
    for (const k in resources) Map.prototype.set.call(m, k, resources[k]!);
    return m;
  }

  /** Whether a record was set or deleted since it was built. */
  get changed(): boolean {
    return this.#changed;
  }

  override set(key: string, value: ResourceRecord): this {
    this.#changed = true;
    return super.set(key, value);
  }

  override delete(key: string): boolean {
    const deleted = super.delete(key);
    if (deleted) this.#changed = true;
    return deleted;
  }

  override clear(): void {
    if (this.size > 0) this.#changed = true;
    super.clear();
  }

  /** The records as the persisted object: `from` itself (what they were built from) when none changed. */
  toObject(from: RecordsObject): RecordsObject {
    if (!this.#changed) return from;
    return recordsObject(this);
  }
}

/** The map as the persisted object, without a [key, record] pair per resource (100k at scale). */
export function recordsObject(records: ReadonlyMap<string, ResourceRecord>): RecordsObject {
  const o: RecordsObject = {};
  for (const [k, r] of records) o[k] = r;
  return o;
}
