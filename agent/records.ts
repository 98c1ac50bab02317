/**
 * The per-resource records during one cycle: a map the cycle updates in place (fold, record, release), laid
 * over the records object it was given instead of copied from it. Reads go to the changes, then to that
 * object; `set` and `delete` touch only the changes. So a cycle costs no map of every record (≈ 8 MiB of
 * table at 100k, issue 12), and the records object it hands back is:
 * - the very object it was given when nothing changed (the steady state: the store then compares nothing);
 * - else a copy of it with the changes applied (one object of every record, not a map and an object).
 *
 * The object it was given is read only, never written (the file store freezes it). Iteration is in the
 * object's key order, then the records added. Only this class's own methods see the records: calling
 * `Map.prototype` methods on it directly sees an empty map.
 */
import type { ResourceRecord } from '../policies/types.js';
import type { PersistedState } from './state/types.js';

type RecordsObject = PersistedState['resources'];

export class CycleRecords extends Map<string, ResourceRecord> {
  readonly #base: RecordsObject;
  /** Records set this cycle (changed ones of the base, and added ones). */
  readonly #set = new Map<string, ResourceRecord>();
  /** Keys of the base deleted this cycle (and not set again). */
  readonly #deleted = new Set<string>();
  /** Keys in #set that the base does not have. */
  #added = 0;
  /** How many keys the base has (counted on first need). */
  #baseSize = -1;

  private constructor(base: RecordsObject) {
    super();
    this.#base = base;
  }

  /** The records of `resources`, read through (nothing is copied). */
  static of(resources: RecordsObject): CycleRecords {
    return new CycleRecords(resources);
  }

  /** Whether a record was set or deleted since it was built. */
  get changed(): boolean {
    return this.#set.size > 0 || this.#deleted.size > 0;
  }

  #inBase(key: string): boolean {
    return Object.hasOwn(this.#base, key);
  }

  override get(key: string): ResourceRecord | undefined {
    const set = this.#set.get(key);
    if (set !== undefined) return set;
    if (!this.#inBase(key) || this.#deleted.has(key)) return undefined;
    return this.#base[key];
  }

  override has(key: string): boolean {
    return this.#set.has(key) || (this.#inBase(key) && !this.#deleted.has(key));
  }

  override get size(): number {
    if (this.#baseSize < 0) {
      let n = 0;
      for (const _ in this.#base) n++;
      this.#baseSize = n;
    }
    return this.#baseSize - this.#deleted.size + this.#added;
  }

  override set(key: string, value: ResourceRecord): this {
    if (this.#inBase(key)) this.#deleted.delete(key);
    else if (!this.#set.has(key)) this.#added++;
    this.#set.set(key, value);
    return this;
  }

  override delete(key: string): boolean {
    if (!this.has(key)) return false;
    if (this.#set.delete(key) && !this.#inBase(key)) this.#added--;
    if (this.#inBase(key)) this.#deleted.add(key);
    return true;
  }

  override clear(): void {
    for (const k of [...this.keys()]) this.delete(k);
  }

  override *entries(): MapIterator<[string, ResourceRecord]> {
    const base = this.#base;
    for (const k in base) {
      if (!Object.hasOwn(base, k) || this.#deleted.has(k)) continue;
      yield [k, this.#set.get(k) ?? base[k]!];
    }
    for (const [k, v] of this.#set) if (!this.#inBase(k)) yield [k, v];
  }

  override *keys(): MapIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  override *values(): MapIterator<ResourceRecord> {
    for (const [, v] of this.entries()) yield v;
  }

  override [Symbol.iterator](): MapIterator<[string, ResourceRecord]> {
    return this.entries();
  }

  override forEach(
    fn: (value: ResourceRecord, key: string, map: Map<string, ResourceRecord>) => void,
    thisArg?: unknown,
  ): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }

  /**
   * The records as the persisted object: the base itself when none changed (read only), else
   * {@link copyObject}.
   */
  toObject(): RecordsObject {
    return this.changed ? this.copyObject() : this.#base;
  }

  /** A new records object: a copy of the base with the changes applied (the base is not touched). */
  copyObject(): RecordsObject {
    const o: RecordsObject = Object.assign({}, this.#base);
    for (const k of this.#deleted) delete o[k];
    for (const [k, v] of this.#set) o[k] = v;
    return o;
  }
}
