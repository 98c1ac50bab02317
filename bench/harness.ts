/**
 * Timing and process helpers shared by the benchmark modules.
 *
 * Each case can run in its own child process (`runInChild`) so that its peak
 * RSS is its own and not the high-water mark of whatever ran before it. The
 * child is started with the parent's `execArgv` (so `--import tsx`, and
 * `--cpu-prof` when profiling, carry over) plus `--expose-gc`, which lets
 * `measure` collect garbage before every timed run.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface Timing {
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
}

export interface MeasureOptions {
  warmup: number;
  runs: number;
}

/** Keeps results reachable so the optimiser cannot drop the work that made them. */
let sink: unknown;
export function consume(value: unknown): void {
  sink = value;
}
export function sunk(): unknown {
  return sink;
}

const gc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc;

/** A full GC when node runs with `--expose-gc` (children started by `runInChild` do); else nothing. */
export function collectGarbage(): void {
  gc?.();
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Runs `fn` `warmup` times untimed, then `runs` times timed (GC before each timed run when exposed). */
export async function measure(fn: () => unknown, opts: MeasureOptions): Promise<Timing> {
  for (let i = 0; i < opts.warmup; i++) consume(await fn());
  const samples: number[] = [];
  for (let i = 0; i < opts.runs; i++) {
    gc?.();
    const t0 = performance.now();
    const out = fn();
    consume(out instanceof Promise ? await out : out);
    samples.push(performance.now() - t0);
  }
  return {
    runs: samples.length,
    medianMs: median(samples),
    minMs: Math.min(...samples),
    maxMs: Math.max(...samples),
    samplesMs: samples,
  };
}

/** Current RSS of this process, in MiB. */
export function rssMiB(): number {
  return process.memoryUsage().rss / 1048576;
}

/** Peak RSS of this process so far, in MiB (the kernel's high-water mark, not a sample). */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * Resets the kernel's peak-RSS mark of this process (Linux ≥ 4.0: `5` to
 * /proc/self/clear_refs), so that {@link peakSinceResetMiB} measures one
 * phase alone. False where that is not possible.
 */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Peak RSS since the last {@link resetPeakRss} (VmHWM), in MiB; the process's maxRSS where /proc is absent. */
export function peakSinceResetMiB(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m?.[1] !== undefined) return Number(m[1]) / 1024;
  } catch {}
  return peakRssMiB();
}

/**
 * Lets the process reach its resting RSS: a full GC, then idle time until RSS
 * stops falling (V8 hands freed heap pages back to the OS on a background
 * task, after the GC, only while the event loop is idle). Returns the RSS in MiB.
 * Bounded by `maxMs`.
 */
export async function settle(maxMs = 3_000): Promise<number> {
  const until = performance.now() + maxMs;
  let last = Number.POSITIVE_INFINITY;
  let steady = 0;
  for (;;) {
    gc?.();
    await new Promise((r) => setTimeout(r, 200));
    const now = rssMiB();
    steady = last - now < 1 ? steady + 1 : 0;
    last = now;
    if (steady >= 2 || performance.now() >= until) return now;
  }
}

const RESULT_MARK = 'BENCH_RESULT ';

/** True when the module at `moduleUrl` is the script node was started with. */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(script).href === moduleUrl;
}

/** In a child: hands the result to the parent (one marked JSON line on stdout). */
export function reply(result: unknown): void {
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(result)}\n`);
}

/**
 * Runs the module at `moduleUrl` as a child process with `args` and returns
 * what it `reply`d. The child's stderr is passed through.
 */
export function runInChild<T>(moduleUrl: string, args: readonly string[]): Promise<T> {
  const script = fileURLToPath(moduleUrl);
  const execArgv = process.execArgv.includes('--expose-gc')
    ? process.execArgv
    : [...process.execArgv, '--expose-gc'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...execArgv, script, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT_MARK));
      if (code !== 0 || line === undefined) {
        reject(new Error(`benchmark child ${script} ${args.join(' ')} exited ${signal ?? code}: ${out}`));
        return;
      }
      resolve(JSON.parse(line.slice(RESULT_MARK.length)) as T);
    });
  });
}
