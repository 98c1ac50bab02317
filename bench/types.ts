/**
 * The contract between `bench/run.ts` and each benchmark module.
 *
 * A module measures one concern (agent overhead without I/O, API calls on a
 * mock cloud, Git poll cost, push-to-converge latency, memory over time…) and
 * returns rows; the runner prints every module's rows as one table and judges
 * each row that carries a target. Timing claims live in docs/performance.md,
 * never in unit tests.
 */

/** One measured figure. */
export interface Row {
  /** The module that produced it (its `name`). */
  benchmark: string;
  /** What was measured, e.g. `diff`, `cycle`. */
  case: string;
  /** Problem size (resources, calls…) or null when it does not apply. */
  n: number | null;
  /** Timed runs the statistics are taken over (after warm-up). */
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Throughput at the median, in `rateUnit` per second; null when meaningless. */
  rate: number | null;
  /** Defaults to `res`. */
  rateUnit?: string;
  /** Peak resident set size of the process that ran the case, in MiB; null when not measured. */
  peakRssMiB: number | null;
  /** RSS of that process when the timed work starts — runtime, modules and the case's input data, after a GC — in MiB. */
  startRssMiB?: number | null;
  /**
   * PASS when `medianMs ≤ target.maxMs`, or — for a figure that is not the
   * median time (a ratio, a byte count, MiB of RSS…) — when `value ≤ max`.
   */
  target: { maxMs: number } | FigureTarget | null;
  /** Shown instead of the rate when the row's figure is something else (a ratio, requests, MiB…). */
  figure?: string;
  note?: string;
}

/** A limit on a figure other than the median time. */
export interface FigureTarget {
  /** The measured value that is judged. */
  value: number;
  max: number;
  /** How the target reads in the table, e.g. `≤ 2 × native`, `≤ 300 MiB`. */
  label: string;
}

export interface BenchContext {
  /** Progress output (stderr), so that stdout carries only the final table. */
  progress(message: string): void;
}

export interface Benchmark {
  /** Selectable with `--only NAME`. */
  name: string;
  /** One line: what it measures. */
  description: string;
  run(ctx: BenchContext): Promise<Row[]>;
}
