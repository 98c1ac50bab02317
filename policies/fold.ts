/**
 * Folding a cycle's fresh observation into the per-resource records, BEFORE
 * deciding — so a backoff the observation schedules (an apply that did not
 * stick) holds the resource in that same cycle.
 *
 * Protects the meaning of "attempt": only the next fresh observation decides
 * whether an apply stuck; a still-drifted resource within its kind's settle
 * window (eventually consistent APIs) is not counted as one. Pure: records in,
 * records and transitions out (in place only when the caller hands its map
 * over); the caller emits the transitions.
 */
import { sameJson } from '../core/object.js';
import { type ConvergenceConfig, emptyRecord, markDrifted, trackConvergence } from './non-convergence.js';
import type { ResourceRecord } from './types.js';

export interface FoldInput {
  /** Resources whose owned fields match their desired document (which becomes the three-way base). */
  converged: ReadonlyArray<{ key: string; desired: unknown }>;
  /** Drifted resources, with their kind's settle window. */
  drifted: ReadonlyArray<{ key: string; desired: unknown; settleMs: number }>;
  records: ReadonlyMap<string, ResourceRecord>;
  /**
   * The caller hands `records` over (a map it built for this fold and reads no more): it is updated in
   * place and returned, instead of copied — one map of every record less per cycle (100k at scale).
   */
  handOver?: boolean;
  now: number;
  config: ConvergenceConfig;
  random: () => number;
}

export interface FoldOutput {
  records: Map<string, ResourceRecord>;
  /** For each resource that converged after drifting: seconds since its drift was first seen. */
  convergedAfterSeconds: number[];
  /** Keys that converged while a stuck alert was open. */
  recovered: string[];
  /** Keys that became stuck (an apply that did not stick, for the Nth cycle), with their attempts. */
  stuck: Array<{ key: string; attempts: number }>;
}

const sameDoc = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export function foldObservation(input: FoldInput): FoldOutput {
  const { now, config, random } = input;
  const records =
    input.handOver && input.records instanceof Map
      ? (input.records as Map<string, ResourceRecord>)
      : new Map(input.records);
  const out: FoldOutput = { records, convergedAfterSeconds: [], recovered: [], stuck: [] };
  for (const r of input.converged) {
    const rec = records.get(r.key) ?? emptyRecord();
    // Already converged on this very desired document: nothing to record (the common case; keeps big fleets cheap).
    if (
      rec.lastApplied === r.desired &&
      rec.firstSeen === undefined &&
      !rec.verifyPending &&
      rec.attempts === 0 &&
      !rec.stuck
    )
      continue;
    if (rec.firstSeen !== undefined)
      out.convergedAfterSeconds.push(Math.max(0, (now - rec.firstSeen) / 1000));
    const step = trackConvergence(rec, { kind: 'converged' }, config, now, random);
    // Converged on fields Git sets: those fields are owned from now on (three-way base). Object.assign, not
    // a spread: V8 gives a spread of the step's record, with lastApplied written over by a document of another
    // shape, a hidden class and descriptors of its own — ≈ 210 bytes per record, ≈ 20 MiB at 100k after a restart.
    records.set(r.key, Object.assign({}, step.record, { verifyPending: false, lastApplied: r.desired }));
    if (step.transition === 'recovered') out.recovered.push(r.key);
  }
  for (const d of input.drifted) {
    const rec = records.get(d.key) ?? emptyRecord();
    const settling = rec.verifyPending && rec.appliedAt !== undefined && now - rec.appliedAt < d.settleMs;
    if (settling) {
      // Right after an apply the old value may still be read back: not "did not stick" within the settle
      // window; the resource is held (nextAttemptAt) until then.
      records.set(d.key, markDrifted(rec, now));
    } else if (rec.verifyPending && sameDoc(rec.lastApplied, d.desired)) {
      // Still drifted after a successful apply of the SAME desired state: it did not stick (another actor
      // fights us, or the provider ignored it). Drift towards a changed desired state is new drift.
      const step = trackConvergence(rec, { kind: 'still-drifted-after-act' }, config, now, random);
      records.set(d.key, { ...step.record, verifyPending: false });
      if (step.transition === 'stuck') out.stuck.push({ key: d.key, attempts: step.record.attempts });
    } else records.set(d.key, markDrifted(rec, now));
  }
  return out;
}

/**
 * After a restart each record holds its own copy of the document applied last (as parsed from disk). Where
 * that copy equals the restored revision's desired document, the record is pointed at the revision's
 * instead: one copy of each document in memory, not two, and the first cycle finds every converged record
 * already on its desired document (no record rebuilt). Pure: returns the new records object, or null when
 * there is nothing to share. A base that differs (a removal to come) is kept as it is.
 */
export function shareBases(
  records: Readonly<Record<string, ResourceRecord>>,
  resources: ReadonlyArray<{ key: string; desired: unknown }>,
): Record<string, ResourceRecord> | null {
  let out: Record<string, ResourceRecord> | null = null;
  for (const r of resources) {
    const rec = Object.hasOwn(records, r.key) ? records[r.key] : undefined;
    if (
      rec?.lastApplied === undefined ||
      rec.lastApplied === r.desired ||
      !sameJson(rec.lastApplied, r.desired)
    )
      continue;
    if (out === null) {
      out = {};
      for (const k in records) out[k] = records[k]!;
    }
    out[r.key] = { ...rec, lastApplied: r.desired };
  }
  return out;
}
