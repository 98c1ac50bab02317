/**
 * Runs the benchmarks and prints one table (markdown, so it pastes into
 * docs/performance.md) on stdout; progress goes to stderr.
 *
 *   npm run bench
 *   node --import tsx bench/run.ts --only diff-decide
 *   node --import tsx bench/run.ts --json            # rows as JSON instead of the table
 *
 * A new benchmark is a module in bench/ exporting a {@link Benchmark}; add it
 * to BENCHMARKS below. Exit status: 0 when every row with a target meets it,
 * 1 when one misses (so CI can run it as a non-blocking job), 2 on bad usage.
 */
import os from 'node:os';
import { cycleRss } from './cycle-rss.js';
import { diffDecide } from './diff-decide.js';
import { ec2Api } from './ec2-api.js';
import { fleet } from './fleet.js';
import { ec2Custodian } from './ec2-custodian.js';
import { gitSource } from './git-source.js';
import { memoryOverTime } from './memory-over-time.js';
import { planFloor } from './plan-floor.js';
import { pushConverge } from './push-converge.js';
import { sideBySide } from './side-by-side.js';
import type { Benchmark, Row } from './types.js';

const BENCHMARKS: readonly Benchmark[] = [
  diffDecide,
  cycleRss,
  memoryOverTime,
  gitSource,
  pushConverge,
  ec2Api,
  planFloor,
  fleet,
  sideBySide,
  ec2Custodian,
];

const NAME_WIDTH = Math.max(...BENCHMARKS.map((b) => b.name.length)) + 1;

interface Args {
  only: string[] | null;
  json: boolean;
}

function usage(message: string, exitCode = 2): never {
  (exitCode === 0 ? process.stdout : process.stderr).write(
    `${message ? `${message}\n` : ''}usage: node --import tsx bench/run.ts [--only NAME[,NAME…]] [--json]\n` +
      `benchmarks:\n${BENCHMARKS.map((b) => `  ${b.name.padEnd(NAME_WIDTH)} ${b.description}`).join('\n')}\n`,
  );
  process.exit(exitCode);
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { only: null, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') args.json = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const v = a === '--only' ? argv[++i] : a.slice('--only='.length);
      if (!v) usage('--only needs a benchmark name');
      args.only = [...(args.only ?? []), ...v.split(',').filter((s) => s.length > 0)];
    } else if (a === '--help' || a === '-h') usage('', 0);
    else usage(`unknown argument "${a}"`);
  }
  const unknown = args.only?.filter((n) => !BENCHMARKS.some((b) => b.name === n)) ?? [];
  if (unknown.length > 0) usage(`unknown benchmark: ${unknown.join(', ')}`);
  return args;
}

export type Verdict = 'PASS' | 'MISS' | '';

export function verdict(row: Row): Verdict {
  const t = row.target;
  if (t === null) return '';
  const ok = 'maxMs' in t ? row.medianMs <= t.maxMs : t.value <= t.max;
  return ok ? 'PASS' : 'MISS';
}

function fmtTarget(t: Row['target']): string {
  if (t === null) return '—';
  return 'maxMs' in t ? `≤ ${t.maxMs} ms` : t.label;
}

function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}

function fmtRate(rate: number | null, unit = 'res'): string {
  if (rate === null || !Number.isFinite(rate)) return '—';
  if (rate >= 1e6) return `${(rate / 1e6).toFixed(2)} M ${unit}/s`;
  if (rate >= 1e3) return `${(rate / 1e3).toFixed(0)} k ${unit}/s`;
  return `${rate.toFixed(0)} ${unit}/s`;
}

/** The rows as one markdown table, columns padded for the terminal. */
export function formatTable(rows: readonly Row[]): string {
  const head = [
    'benchmark',
    'case',
    'N',
    'runs',
    'median ms',
    'min–max ms',
    'rate / figure',
    'peak RSS',
    'RSS at start',
    'target',
    'result',
  ];
  const body = rows.map((r) => [
    r.benchmark,
    r.case,
    r.n === null ? '—' : r.n.toLocaleString('en'),
    String(r.runs),
    fmtMs(r.medianMs),
    Number.isFinite(r.minMs) ? `${fmtMs(r.minMs)}–${fmtMs(r.maxMs)}` : '—',
    r.figure ?? fmtRate(r.rate, r.rateUnit),
    r.peakRssMiB === null ? '—' : `${r.peakRssMiB.toFixed(0)} MiB`,
    r.startRssMiB === null || r.startRssMiB === undefined ? '—' : `${r.startRssMiB.toFixed(0)} MiB`,
    fmtTarget(r.target),
    verdict(r) || '—',
  ]);
  const right = new Set([2, 3, 4, 5, 7, 8]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i]!.length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (right.has(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(head), rule, ...body.map(line)].join('\n');
}

function machine(): string {
  const cpus = os.cpus();
  return `${new Date().toISOString().slice(0, 10)} · node ${process.version} · ${os.platform()}/${os.arch()} · ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const selected = BENCHMARKS.filter((b) => args.only === null || args.only.includes(b.name));
  const ctx = { progress: (m: string) => process.stderr.write(`… ${m}\n`) };
  const rows: Row[] = [];
  const t0 = performance.now();
  for (const b of selected) rows.push(...(await b.run(ctx)));
  const elapsed = ((performance.now() - t0) / 1000).toFixed(1);
  if (args.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  else {
    process.stdout.write(`\n${machine()} · ${elapsed} s\n\n${formatTable(rows)}\n`);
    // One line per benchmark/case; per size only where the note differs between sizes.
    const label = (r: Row): string => `${r.benchmark}/${r.case}`;
    const varies = new Set(
      rows.filter((r) => rows.some((o) => label(o) === label(r) && o.note !== r.note)).map(label),
    );
    const notes = [
      ...new Map(
        rows
          .filter((r) => r.note)
          .map((r) => [varies.has(label(r)) && r.n !== null ? `${label(r)} (N ${r.n})` : label(r), r.note]),
      ).entries(),
    ];
    if (notes.length > 0) process.stdout.write(`\n${notes.map(([k, n]) => `  ${k}: ${n}`).join('\n')}\n`);
    process.stdout.write(
      '\nmedian of the timed runs after warm-up; rate = N / median; peak RSS = maxRSS of the child process that ran the case, input data included; RSS at start = its RSS when timing began, after a GC (runtime + input data: cycle-rss takes them apart); a target other than time is judged on the figure it names\n',
    );
  }
  if (rows.some((r) => verdict(r) === 'MISS')) process.exitCode = 1;
}

await main();
