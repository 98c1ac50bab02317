/**
 * Agent overhead without I/O: what one cycle costs the agent itself, for
 * 1k / 10k / 100k synthetic File resources (see `synthetic.ts`), 1 % drifted.
 *
 * Cases (each size × case runs in its own child process, so its peak RSS is
 * its own; the fleet is built before timing and counts towards that peak):
 *
 *  - `parse`: `parseRevision` of the fleet's manifests, one multi-document
 *    YAML file per 100 resources — the cost of accepting a new revision;
 *  - `diff`: `diffOwned` for every resource against its observed document and
 *    last-applied base — detection minus the provider read;
 *  - `decide`: `decide()` over the resulting drift, with a record for every
 *    resource — the guardrails;
 *  - `cycle`: the in-memory steps of `Reconciler.cycle` in order — detect's
 *    diff loop, folding the observation into the records (`trackConvergence`
 *    / `markDrifted`), building the decide input, `decide()`. The figure the
 *    target is about;
 *  - `reconciler`: the real `Reconciler.cycle` with an in-memory provider
 *    (observe returns prepared documents, apply succeeds at once) and a
 *    no-op state store: the same plus observe grouping, record bookkeeping,
 *    persisted-state and report building. A cross-check that `cycle` does not
 *    leave out something that matters.
 *
 * Targets: 10k resources ≤ 100 ms and 100k ≤ 1 s per cycle (median).
 */
import { diffOwned } from '../agent/diff.js';
import { parseRevision } from '../agent/manifest.js';
import type { DetectedDrift } from '../agent/detect.js';
import { silentLogger } from '../agent/log.js';
import { Reconciler, toDecideDrift } from '../agent/reconciler.js';
import { type DecideInput, type DecideOutput, decide } from '../policies/decide.js';
import { seededRandom } from '../policies/backoff.js';
import { foldObservation } from '../policies/fold.js';
import { soakStep } from '../policies/soak.js';
import type { GuardrailConfig, ResourceRecord } from '../policies/types.js';
import { fileKind } from '../providers/file/kind.js';
import { KINDS } from '../providers/registry.js';
import type { DesiredResource, OwnedDoc } from '../providers/types.js';
import { memoryProvider, noopStore } from './in-memory.js';
import {
  collectGarbage,
  isMain,
  type MeasureOptions,
  measure,
  peakRssMiB,
  rssMiB,
  reply,
  runInChild,
  type Timing,
} from './harness.js';
import { benchGuardrails, buildFleet, type Fleet, manifests, NOW } from './synthetic.js';
import type { Benchmark, Row } from './types.js';

const NAME = 'diff-decide';
const SIZES = [1_000, 10_000, 100_000] as const;
const CASES = ['parse', 'diff', 'decide', 'cycle', 'reconciler'] as const;
type Case = (typeof CASES)[number];

/** Target per cycle, by size; only the cycle figures are judged. */
const TARGET_MS: ReadonlyMap<number, number> = new Map([
  [10_000, 100],
  [100_000, 1_000],
]);
const TARGETED: ReadonlySet<Case> = new Set(['cycle', 'reconciler']);

/**
 * Fewer runs as N grows, so the whole module stays under a minute on 2 cores.
 * The sanity check before timing is one more untimed run of the same work, so
 * 100k parse (≈ 3–4 s a run) needs no separate warm-up.
 */
function schedule(n: number, c: Case): MeasureOptions {
  if (n >= 100_000) return c === 'parse' ? { warmup: 0, runs: 3 } : { warmup: 2, runs: 5 };
  if (n >= 10_000) return c === 'parse' ? { warmup: 2, runs: 5 } : { warmup: 3, runs: 11 };
  return { warmup: 5, runs: 21 };
}

const NOTES: Readonly<Record<Case, string>> = {
  parse: 'parseRevision, 100 docs per file',
  diff: 'diffOwned × N',
  decide: 'decide() over 1 % drift, N records',
  cycle: 'diff + fold records + decide (Reconciler.cycle steps 1–3)',
  reconciler: 'real Reconciler.cycle, in-memory provider, no-op store',
};

// ---------------------------------------------------------------------------
// The work being measured.

const lastAppliedOf = (records: ReadonlyMap<string, ResourceRecord>, key: string): OwnedDoc | undefined =>
  records.get(key)?.lastApplied as OwnedDoc | undefined;

/** Detect's diff loop over prepared observations (detect.ts minus observeAll). */
function diffAll(
  fleet: Fleet,
  records: ReadonlyMap<string, ResourceRecord>,
): { drift: DetectedDrift[]; converged: DesiredResource[] } {
  const drift: DetectedDrift[] = [];
  const converged: DesiredResource[] = [];
  for (const resource of fleet.resources) {
    const result = fleet.observed.get(resource.key);
    if (result === undefined || result.status === 'error') continue;
    const patch = diffOwned(fileKind, resource.desired, result.doc, lastAppliedOf(records, resource.key));
    if (patch.length === 0) converged.push(resource);
    else drift.push({ resource, id: result.id, patch, observed: result.doc });
  }
  return { drift, converged };
}

const sameDoc = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * The in-memory part of `Reconciler.cycle` up to the `decide()` call: detect's
 * diff, the fold (the reconciler's own pure step, policies/fold.ts), the soak
 * step and the decide input. The `reconciler` case measures the real thing.
 * The records hold copies of the desired documents (as loaded from disk), so
 * every converged record is rewritten: the first cycle after a restart, the
 * dearer case.
 */
function prepareDecide(fleet: Fleet, config: GuardrailConfig, random: () => number): DecideInput {
  const { state } = fleet;
  const detection = diffAll(fleet, new Map(Object.entries(state.resources)));
  const { records } = foldObservation({
    converged: detection.converged,
    drifted: detection.drift.map((d) => ({ key: d.resource.key, desired: d.resource.desired, settleMs: 0 })),
    records: new Map<string, ResourceRecord>(Object.entries(state.resources)),
    now: NOW,
    config: { alertAfterCycles: config.nonConvergence.alertAfterCycles, backoff: config.backoff },
    random,
  });
  const soak = soakStep(state.soak, fleet.revision.sha, config.soak.observeCycles);
  const sha = fleet.revision.sha;
  return {
    now: NOW,
    mode: state.mode ?? 'observe',
    freeze: state.freeze,
    revision: { sha, approvedKeys: null, soaking: soak.soaking },
    managed: fleet.resources.length,
    drift: detection.drift.map((d) => toDecideDrift(d, KINDS)),
    records,
    bucket: state.bucket,
    config,
  };
}

function reconcilerFor(fleet: Fleet, config: GuardrailConfig): Reconciler {
  return new Reconciler({
    kinds: KINDS,
    providers: new Map([['file', memoryProvider(fleet)]]),
    store: noopStore,
    guardrails: config,
    initialMode: 'enforce',
    clock: () => NOW,
    random: seededRandom(7),
    log: silentLogger,
    emit: () => {},
  });
}

// ---------------------------------------------------------------------------
// Sanity checks: a benchmark of the wrong work is worse than none.

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`diff-decide benchmark: sanity check failed: ${what}`);
}

/** What the cycle may act on: the drifted ones not in backoff, up to the cap (10). */
const expectedActs = (fleet: Fleet): number => Math.min(10, fleet.drifted - fleet.notSticking);

function checkDecision(out: DecideOutput, fleet: Fleet): void {
  const backoff = out.hold.filter((h) => h.reason === 'backoff').length;
  check(out.act.length + out.hold.length === fleet.drifted, `every drift decided (${fleet.drifted})`);
  check(backoff === fleet.notSticking, `${fleet.notSticking} in backoff, got ${backoff}`);
  check(out.act.length === expectedActs(fleet), `act ${expectedActs(fleet)}, got ${out.act.length}`);
  check(out.freeze === null, 'no mass-drift freeze');
}

interface CaseResult {
  timing: Timing;
  peakRssMiB: number;
  startRssMiB: number;
}

interface Prepared {
  work: () => unknown;
  /** One untimed run of the same work, checked: a benchmark of the wrong work is worse than none. */
  verify: () => Promise<void>;
}

/** Builds the input of case `c` (not timed) and the work to time. */
function prepare(c: Case, fleet: Fleet, config: GuardrailConfig): Prepared {
  const n = fleet.resources.length;
  switch (c) {
    case 'parse': {
      const files = manifests(fleet.resources);
      return {
        work: () => parseRevision(files, KINDS),
        verify: async () => {
          const parsed = parseRevision(files, KINDS);
          check(parsed.ok && parsed.resources.length === n, `parse yields ${n} valid resources`);
          check(
            parsed.resources.every((r, i) => sameDoc(r.desired, fleet.resources[i]?.desired)),
            'parsed desired documents equal the synthetic ones',
          );
        },
      };
    }
    case 'diff': {
      const records = new Map(Object.entries(fleet.state.resources));
      return {
        work: () => diffAll(fleet, records),
        verify: async () =>
          check(
            diffAll(fleet, records).drift.length === fleet.drifted,
            `diff finds ${fleet.drifted} drifted`,
          ),
      };
    }
    case 'decide': {
      const input = prepareDecide(fleet, config, seededRandom(7));
      return {
        work: () => decide(input),
        verify: async () => {
          check(input.drift.length === fleet.drifted && input.records.size === n, '1 % drift, N records');
          checkDecision(decide(input), fleet);
        },
      };
    }
    case 'cycle': {
      const random = seededRandom(7);
      return {
        work: () => decide(prepareDecide(fleet, config, random)),
        verify: async () => checkDecision(decide(prepareDecide(fleet, config, random)), fleet),
      };
    }
    case 'reconciler': {
      const reconciler = reconcilerFor(fleet, config);
      const work = () => reconciler.cycle(fleet.revision, fleet.state, () => false);
      return {
        work,
        verify: async () => {
          const { report } = await work();
          check(report.drifted === fleet.drifted && report.managed === n, 'reconciler sees 1 % drift');
          check(
            report.applied === expectedActs(fleet),
            `reconciler applies ${expectedActs(fleet)}, got ${report.applied}`,
          );
        },
      };
    }
  }
}

async function runCase(c: Case, n: number): Promise<CaseResult> {
  const { work, verify } = prepare(c, buildFleet(n), benchGuardrails(n));
  collectGarbage();
  const startRssMiB = rssMiB();
  await verify();
  const timing = await measure(work, schedule(n, c));
  return { timing, peakRssMiB: peakRssMiB(), startRssMiB };
}

// ---------------------------------------------------------------------------
// The module.

export const diffDecide: Benchmark = {
  name: NAME,
  description:
    'agent overhead without I/O: parse, diff, decide and one in-memory cycle for 1k/10k/100k Files',
  async run(ctx) {
    const rows: Row[] = [];
    for (const n of SIZES) {
      for (const c of CASES) {
        ctx.progress(`${NAME}: ${c} × ${n.toLocaleString('en')}`);
        const r = await runInChild<CaseResult>(import.meta.url, ['--child', c, String(n)]);
        const maxMs = TARGETED.has(c) ? TARGET_MS.get(n) : undefined;
        rows.push({
          benchmark: NAME,
          case: c,
          n,
          runs: r.timing.runs,
          medianMs: r.timing.medianMs,
          minMs: r.timing.minMs,
          maxMs: r.timing.maxMs,
          rate: n / (r.timing.medianMs / 1000),
          rateUnit: 'res',
          peakRssMiB: r.peakRssMiB,
          startRssMiB: r.startRssMiB,
          target: maxMs === undefined ? null : { maxMs },
          note: NOTES[c],
        });
      }
    }
    return rows;
  },
};

if (isMain(import.meta.url)) {
  const [flag, c, n] = process.argv.slice(2);
  if (flag !== '--child' || !CASES.includes(c as Case) || !Number.isSafeInteger(Number(n))) {
    process.stderr.write(`usage: node --import tsx bench/diff-decide.ts --child ${CASES.join('|')} N\n`);
    process.exit(2);
  }
  reply(await runCase(c as Case, Number(n)));
}
