/**
 * Memory over time: 2,000 real `Reconciler.cycle` calls at 10k File
 * resources, each cycle's state fed into the next (as the agent does), with
 * the clock advancing by the reconcile interval (30 s) — a leak check.
 *
 * The fleet keeps about 1 % drifted all the time: before each cycle
 * {@link EDITS_PER_CYCLE} files are "edited by hand" (a moving window through
 * the fleet), and the in-memory provider's apply really converges what it is
 * asked to, so records go through drifted → applied → verified → converged
 * again and again (the per-cycle cap is 10: the agent keeps pace). No I/O:
 * observe returns the prepared documents, the state store is a no-op.
 *
 * RSS and heap are sampled after a GC (and idle time, so V8 can return freed
 * pages) before the first cycle, after the warm-up cycles, and at the end;
 * the heap also every {@link SAMPLE_EVERY} cycles, so a trend shows.
 * Judged: heap growth from warm-up to the end (a leak grows the heap; RSS
 * also moves with fragmentation and V8's sizing).
 */
import { silentLogger } from '../agent/log.js';
import { clearDiffCache, DIFF_CACHE_CHARS, diffCacheStats } from '../agent/patch-view.js';
import { Reconciler } from '../agent/reconciler.js';
import type { PersistedState } from '../agent/state/types.js';
import { seededRandom } from '../policies/backoff.js';
import { fileKind } from '../providers/file/kind.js';
import { KINDS } from '../providers/registry.js';
import type { Provider } from '../providers/types.js';
import { noopStore } from './in-memory.js';
import { consume, isMain, median, reply, runInChild, settle } from './harness.js';
import { benchGuardrails, buildFleet, type Fleet, NOW } from './synthetic.js';
import type { Benchmark } from './types.js';

const NAME = 'memory-over-time';
const N = 10_000;
const CYCLES = 2_000;
const WARMUP = 100;
const SAMPLE_EVERY = 250;
const EDITS_PER_CYCLE = 10;
const INTERVAL_MS = 30_000;
/** Heap growth allowed from warm-up to the end: 1 MiB, or 2 % of the warm heap if that is more. */
const leakLimitMiB = (warmHeap: number): number => Math.max(1, warmHeap * 0.02);

const heapMiB = (): number => process.memoryUsage().heapUsed / 1048576;

interface Sample {
  cycle: number;
  rss: number;
  heap: number;
}

interface ChildResult {
  start: Sample;
  warm: Sample;
  end: Sample;
  trend: Sample[];
  ms: number[];
  drifted: { min: number; max: number };
  applied: number;
  /** Most characters the display diffs' cache held at a sample, before it was emptied. */
  cacheChars: number;
}

const ownCopy = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');

/**
 * Observe returns the fleet's observed documents; apply writes the desired
 * content into them (the change sticks) and succeeds.
 */
function convergingProvider(fleet: Fleet): Provider {
  return {
    name: 'file',
    kinds: [fileKind],
    observe: async () => fleet.observed,
    apply: async (actions) =>
      actions.map((a) => {
        const spec = a.resource.desired.spec;
        const id = a.resource.spec['path'] as string;
        fleet.observed.set(a.resource.key, {
          status: 'present',
          id,
          // What the next read of the file gives: a string of its own (as in the synthetic fleet).
          doc: {
            spec: {
              ensure: 'present',
              content: ownCopy(String(spec['content'])),
              mode: spec['mode'] ?? '0644',
            },
          },
        });
        return { key: a.resource.key, id, outcome: 'applied' as const };
      }),
  };
}

/** Edits {@link EDITS_PER_CYCLE} files by hand: a window that moves through the fleet. */
function editByHand(fleet: Fleet, cycle: number): void {
  for (let j = 0; j < EDITS_PER_CYCLE; j++) {
    const r = fleet.resources[(cycle * EDITS_PER_CYCLE + j) % fleet.resources.length]!;
    const seen = fleet.observed.get(r.key);
    if (seen?.status !== 'present') continue;
    const spec = seen.doc.spec as Record<string, unknown>;
    fleet.observed.set(r.key, {
      ...seen,
      doc: { spec: { ...spec, content: `${String(spec['content'])}# edited by hand in cycle ${cycle}\n` } },
    });
  }
}

/** The most characters the diff cache held at a sample (reported, and at most DIFF_CACHE_CHARS). */
let cacheSeen = 0;

async function sample(cycle: number): Promise<Sample> {
  // The display diffs' cache is bounded (DIFF_CACHE_CHARS) and this fleet's hand edits never repeat, so it
  // fills towards its bound for thousands of cycles: emptied before each sample, so that only a leak grows.
  cacheSeen = Math.max(cacheSeen, diffCacheStats().chars);
  clearDiffCache();
  const rss = await settle();
  return { cycle, rss, heap: heapMiB() };
}

async function runChild(cycles: number): Promise<ChildResult> {
  const fleet = buildFleet(N);
  let now = NOW;
  const reconciler = new Reconciler({
    kinds: KINDS,
    providers: new Map([['file', convergingProvider(fleet)]]),
    store: noopStore,
    guardrails: benchGuardrails(N),
    initialMode: 'enforce',
    clock: () => now,
    random: seededRandom(7),
    log: silentLogger,
    emit: () => {},
  });
  let state: PersistedState = fleet.state;
  fleet.state = { ...fleet.state, resources: {} }; // the agent holds only the latest state
  const start = await sample(0);
  let warm = start;
  const trend: Sample[] = [];
  const ms: number[] = [];
  let minDrift = Number.POSITIVE_INFINITY;
  let maxDrift = 0;
  let applied = 0;
  for (let c = 1; c <= cycles; c++) {
    editByHand(fleet, c);
    const t0 = performance.now();
    const out = await reconciler.cycle(fleet.revision, state, () => false);
    ms.push(performance.now() - t0);
    state = out.state;
    now += INTERVAL_MS;
    applied += out.report.applied;
    if (c > WARMUP) {
      minDrift = Math.min(minDrift, out.report.drifted);
      maxDrift = Math.max(maxDrift, out.report.drifted);
    }
    if (c === WARMUP) warm = await sample(c);
    else if (c % SAMPLE_EVERY === 0 && c < cycles) trend.push(await sample(c));
  }
  const end = await sample(cycles);
  // Keep what the agent keeps between cycles reachable until after the last sample, like the earlier ones.
  consume([fleet, state, reconciler]);
  return {
    start,
    warm,
    end,
    trend,
    ms,
    drifted: { min: minDrift, max: maxDrift },
    applied,
    cacheChars: cacheSeen,
  };
}

export const memoryOverTime: Benchmark = {
  name: NAME,
  description: `leak check: ${CYCLES.toLocaleString('en')} real cycles at ${N / 1000}k resources, ~1 % drift, RSS and heap at start and end`,
  async run(ctx) {
    ctx.progress(`${NAME}: ${CYCLES.toLocaleString('en')} cycles × ${N.toLocaleString('en')} resources`);
    const r = await runInChild<ChildResult>(import.meta.url, ['--child']);
    const steady = r.ms.slice(WARMUP);
    const growth = r.end.heap - r.warm.heap;
    const limit = leakLimitMiB(r.warm.heap);
    const m = (x: number): string => x.toFixed(1);
    return [
      {
        benchmark: NAME,
        case: `${CYCLES} cycles`,
        n: N,
        runs: steady.length,
        medianMs: median(steady),
        minMs: Math.min(...steady),
        maxMs: Math.max(...steady),
        rate: null,
        peakRssMiB: Math.max(r.start.rss, r.warm.rss, r.end.rss, ...r.trend.map((s) => s.rss)),
        startRssMiB: r.start.rss,
        target: { value: growth, max: limit, label: `heap growth ≤ ${limit.toFixed(1)} MiB` },
        figure: `RSS ${m(r.warm.rss)}→${m(r.end.rss)} · heap ${m(r.warm.heap)}→${m(r.end.heap)} MiB (${growth >= 0 ? '+' : ''}${growth.toFixed(2)})`,
        note:
          `after GC + idle: start (before cycle 1) RSS ${m(r.start.rss)} / heap ${m(r.start.heap)} MiB; ` +
          `after cycle ${WARMUP} (warm) RSS ${m(r.warm.rss)} / heap ${m(r.warm.heap)}; ` +
          `after cycle ${CYCLES} RSS ${m(r.end.rss)} / heap ${m(r.end.heap)}. ` +
          `Heap after GC every ${SAMPLE_EVERY} cycles: ${r.trend.map((s) => `${s.cycle}: ${m(s.heap)}`).join(', ')}. ` +
          `Drifted per cycle ${r.drifted.min}–${r.drifted.max}; ${r.applied} applies in all. ` +
          `The display diffs' cache (bounded: ${DIFF_CACHE_CHARS.toLocaleString('en')} characters) held up to ${r.cacheChars.toLocaleString('en')} between samples and is emptied before each. ` +
          `Median/min/max ms over cycles ${WARMUP + 1}–${CYCLES}`,
      },
    ];
  },
};

if (isMain(import.meta.url)) {
  const [flag, cycles = String(CYCLES)] = process.argv.slice(2);
  if (flag !== '--child' || !Number.isSafeInteger(Number(cycles)) || Number(cycles) <= WARMUP) {
    process.stderr.write(`usage: node --import tsx bench/memory-over-time.ts --child [CYCLES > ${WARMUP}]\n`);
    process.exit(2);
  }
  reply(await runChild(Number(cycles)));
}
