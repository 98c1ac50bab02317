/**
 * The plan as people read it: text for a terminal (colour optional), Markdown
 * for a pull-request comment, and JSON for scripts. Pure: a PlanReport and its
 * context in, lines out. Values come only from the report's changes, which
 * never hold a file's content or any value of a sensitive resource (digests).
 */
import { escapeControls } from '../../core/text.js';
import type { Digest } from '../patch-view.js';
import type { PlanChange, PlanReport, PlanResource } from './report.js';

/** What was planned and from which state: the lines above the resources. */
export interface PlanContext {
  /** The commit planned; null for a working tree. */
  revision: string | null;
  /** Where it came from: `source.ref main`, `--ref feature`, `working tree ./checkout`. */
  target: string;
  signer: string | null;
  verified: true | null;
  state: {
    /** state.json read (read-only), or a fresh state planned from instead. */
    from: 'state-dir' | 'fresh';
    path: string;
    /** Why a fresh state (the file is missing, or could not be read). */
    note?: string;
  };
}

export type PlanFormat = 'text' | 'markdown' | 'json';
export const PLAN_FORMATS: readonly PlanFormat[] = ['text', 'markdown', 'json'];

/** What to say after a hold reason; a reason not listed here is shown as decide names it. */
const HOLD_HINTS: Readonly<Record<string, string>> = {
  frozen: 'the agent is frozen; `steward unfreeze` (or POST /v1/unfreeze) lifts it',
  observe: 'mode observe; `steward mode enforce` (or PUT /v1/mode) lets it act',
  soak: 'a new revision is only observed for guardrails.soak.observeCycles cycle(s) before the agent acts on it',
  backoff: 'a recent apply failed or did not stick; it is retried once its backoff has elapsed',
  cap: 'beyond guardrails.maxActionsPerCycle; later cycles take it, oldest drift first',
  'rate-limit': 'no rate-limit token left (guardrails.rateLimit); a later cycle takes it',
  'mass-drift':
    'so many resources would change that the agent would freeze itself; approve the revision to roll it out',
  'state-unwritable': 'the state cannot be written, so nothing is acted on',
  window: 'outside every allow window, or inside a deny window (windows in the agent config)',
};

const SYMBOL: Readonly<Record<PlanResource['action'], string>> = {
  create: '+',
  update: '~',
  delete: '-',
  'report-only': '#',
};

type Paint = (style: keyof typeof ANSI, s: string) => string;
const ANSI = {
  green: '32',
  yellow: '33',
  red: '31',
  cyan: '36',
  magenta: '35',
  bold: '1',
  dim: '2',
} as const;
const ACTION_STYLE: Readonly<Record<PlanResource['action'], keyof typeof ANSI>> = {
  create: 'green',
  update: 'yellow',
  delete: 'red',
  'report-only': 'cyan',
};

/**
 * Colour or not: `--no-color`, then NO_COLOR (any value), then FORCE_COLOR (not "0"), then whether
 * stdout is a terminal.
 */
export function colourWanted(opts: { noColor: boolean; isTTY: boolean; env: NodeJS.ProcessEnv }): boolean {
  if (opts.noColor) return false;
  if (opts.env['NO_COLOR'] !== undefined && opts.env['NO_COLOR'] !== '') return false;
  const force = opts.env['FORCE_COLOR'];
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false';
  return opts.isTTY;
}

const short = (d: Digest | null): string =>
  d ? `sha256:${d.sha256.slice(0, 12)} (${d.bytes} bytes)` : 'none';
const show = (v: unknown): string => escapeControls(JSON.stringify(v) ?? 'null');

/** `Plan: 1 to create, 2 to update, 1 report only; 2 held (frozen)`. */
export function summaryLine(report: PlanReport): string {
  const s = report.summary;
  const parts = [`${s.create} to create`, `${s.update} to update`];
  if (s.delete > 0) parts.push(`${s.delete} to delete`);
  if (s.reportOnly > 0) parts.push(`${s.reportOnly} report only`);
  let line = `Plan: ${parts.join(', ')}`;
  const held = Object.entries(s.held);
  const total = held.reduce((n, [, c]) => n + c, 0);
  if (total > 0)
    line +=
      held.length === 1
        ? `; ${total} held (${held[0]![0]})`
        : `; ${total} held (${held.map(([r, c]) => `${c} ${r}`).join(', ')})`;
  if (s.unreadable > 0) line += `; ${s.unreadable} unreadable`;
  return `${line}.`;
}

/** `update, held: frozen` / `report only` / `create`. */
function actionText(r: PlanResource): string {
  const base = r.action === 'report-only' ? 'report only (never reverted)' : r.action;
  return r.held === null ? base : `${base}, held: ${r.held}`;
}

const title = (r: { kind: string; name: string; id: string | null }): string =>
  `${r.kind}/${r.name}${r.id ? ` (${r.id})` : ''}`;

/**
 * The change lines worth showing, fields before contents (whose diffs are long); `ensure` is the
 * create/delete itself, already in the title.
 */
const shown = (r: PlanResource): PlanChange[] => {
  const changes = r.change === 'update' ? r.changes : r.changes.filter((c) => c.path !== '/spec/ensure');
  return [...changes.filter((c) => !c.digests), ...changes.filter((c) => c.digests)];
};

/**
 * One change in a line: `~ spec.mode: "0600" → "0644"`, digests for contents and sensitive values;
 * a field the agent only reports is marked so, unless the whole resource is report only.
 */
function changeLine(c: PlanChange, r: PlanResource): string {
  const sym = c.op === 'add' ? '+' : c.op === 'remove' ? '-' : '~';
  let value: string;
  if (c.digests) {
    const { before, after } = c.digests;
    value =
      before === null ? short(after) : after === null ? short(before) : `${short(before)} → ${short(after)}`;
    if (c.diff === undefined)
      value += r.sensitive ? ' (sensitive: digests only)' : ' (diff not shown: too large)';
  } else if (c.op === 'remove') value = c.before === undefined ? '' : show(c.before);
  else if (c.before !== undefined) value = `${show(c.before)} → ${show(c.after)}`;
  else value = show(c.after);
  return `${sym} ${c.field}${value ? `: ${value}` : ''}${reportNote(c, r, '  (report only)')}`;
}

const reportNote = (c: PlanChange, r: PlanResource, note: string): string =>
  c.reportOnly && r.action !== 'report-only' ? note : '';

/** A content diff's lines; the content is data (perhaps an attacker's): its control characters escaped. */
const diffLines = (diff: string): string[] =>
  diff
    .replace(/\n$/, '')
    .split('\n')
    .map((l) => escapeControls(l, '\t'));

function paintDiffLine(paint: Paint, l: string): string {
  if (l.startsWith('@@')) return paint('cyan', l);
  if (l.startsWith('+')) return paint('green', l);
  if (l.startsWith('-')) return paint('red', l);
  return l;
}

/** Who signed the revision, or why it is unverified. */
export function signerLine(ctx: Pick<PlanContext, 'revision' | 'signer' | 'verified'>): string {
  if (ctx.verified) return `signed by ${ctx.signer}`;
  return ctx.revision === null
    ? 'unverified (a working tree has no signatures)'
    : 'unverified (no source.verify in the config)';
}

function contextLines(ctx: PlanContext, report: PlanReport): string[] {
  const what = ctx.revision ? `revision ${ctx.revision.slice(0, 12)} (${ctx.target})` : ctx.target;
  const out = [
    `${what}: ${report.managed} managed, ${report.resources.length} drifted, ${report.errors.length} unreadable`,
    signerLine(ctx),
  ];
  const mode = `mode ${report.mode}, ${report.frozen ? 'frozen' : 'not frozen'}${report.soaking ? ', the revision would soak' : ''}`;
  out.push(
    ctx.state.from === 'state-dir'
      ? `state: ${ctx.state.path} (read only): ${mode}`
      : `state: a fresh one, ${ctx.state.note ?? `no ${ctx.state.path}`}: ${mode}`,
  );
  if (report.wouldFreeze)
    out.push(`mass drift: the next cycle would freeze the agent (${report.wouldFreeze})`);
  return out;
}

/** The hint lines of the hold reasons present. */
function holdHints(report: PlanReport): string[] {
  return Object.keys(report.summary.held)
    .filter((r) => HOLD_HINTS[r] !== undefined)
    .map((r) => `held (${r}): ${HOLD_HINTS[r]}`);
}

/** The terminal form. `colour`: ANSI styles (decided by `colourWanted`). */
export function renderText(report: PlanReport, ctx: PlanContext, colour: boolean): string[] {
  const paint: Paint = colour ? (style, s) => `\x1b[${ANSI[style]}m${s}\x1b[0m` : (_, s) => s;
  const out = contextLines(ctx, report);
  for (const r of report.resources) {
    const style = ACTION_STYLE[r.action];
    const head = `${SYMBOL[r.action]} ${title(r)}: ${actionText(r)}`;
    out.push('', paint('bold', paint(style, head)));
    for (const c of shown(r)) {
      const line = `    ${changeLine(c, r)}`;
      out.push(c.reportOnly ? paint('cyan', line) : line);
      if (c.diff) for (const l of diffLines(c.diff)) out.push(`        ${paintDiffLine(paint, l)}`);
    }
  }
  for (const e of report.errors)
    out.push('', paint('red', `! ${title(e)}: cannot be read: ${escapeControls(e.error)}`));
  if (report.resources.length + report.errors.length === 0)
    out.push('', 'No changes: every managed resource matches the revision.');
  out.push('', paint('bold', summaryLine(report)));
  for (const h of holdHints(report)) out.push(paint('dim', h));
  return out;
}

/** Markdown for a pull-request comment: no ANSI, a table, diffs in ```diff fences. */
export function renderMarkdown(report: PlanReport, ctx: PlanContext): string[] {
  const what = ctx.revision ? `\`${ctx.revision.slice(0, 12)}\` (${cell(ctx.target)})` : cell(ctx.target);
  const out = [`### steward plan: ${what}`, '', `**${summaryLine(report)}**`, ''];
  out.push(
    ...contextLines(ctx, report)
      .slice(1)
      .map((l) => `- ${cell(l)}`),
  );
  if (report.resources.length + report.errors.length > 0) {
    out.push('', '| | resource | action | held |', '|---|---|---|---|');
    for (const r of report.resources)
      out.push(
        `| \`${SYMBOL[r.action]}\` | ${code(title(r))} | ${r.action === 'report-only' ? 'report only' : r.action} | ${r.held ?? ''} |`,
      );
    for (const e of report.errors) out.push(`| \`!\` | ${code(title(e))} | unreadable: ${cell(e.error)} | |`);
  }
  for (const r of report.resources) {
    const body: string[] = [];
    for (const c of shown(r)) {
      body.push(...diffChange(c, r));
      if (c.diff) body.push(...diffLines(c.diff));
    }
    if (body.length === 0) continue;
    const fence = '`'.repeat(Math.max(3, longestBacktickRun(body.join('\n')) + 1));
    out.push('', `#### ${code(title(r))}: ${cell(actionText(r))}`, '', `${fence}diff`, ...body, fence);
  }
  const hints = holdHints(report);
  if (hints.length > 0) out.push('', ...hints.map((h) => `- ${cell(h)}`));
  return out;
}

/** A change in a diff fence: the old value as a `-` line, the new as a `+` line. */
function diffChange(c: PlanChange, r: PlanResource): string[] {
  const note = reportNote(c, r, '  # report only');
  if (c.digests) return [`  ${changeLine(c, r).slice(2)}`];
  const out: string[] = [];
  if (c.before !== undefined) out.push(`- ${c.field}: ${show(c.before)}${c.op === 'remove' ? note : ''}`);
  else if (c.op === 'remove') out.push(`- ${c.field}${note}`);
  if (c.op !== 'remove') out.push(`+ ${c.field}: ${show(c.after)}${note}`);
  return out;
}

function longestBacktickRun(s: string): number {
  let best = 0;
  for (const m of s.matchAll(/`+/g)) best = Math.max(best, m[0].length);
  return best;
}

/** Text safe in a table cell or a heading (no pipe, no line break). */
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
/** A code span that no backtick in the text can end early. */
const code = (s: string): string => {
  const ticks = '`'.repeat(longestBacktickRun(s) + 1);
  return `${ticks}${ticks.length > 1 ? ' ' : ''}${cell(s)}${ticks.length > 1 ? ' ' : ''}${ticks}`;
};

/**
 * The JSON form: the keys `plan --json` always had (revision, signer, verified, managed, drifted,
 * drift[].{kind, name, id, patch}, errors) and the plan's own beside them.
 */
export function renderJson(report: PlanReport, ctx: PlanContext): string {
  return JSON.stringify(
    {
      revision: ctx.revision,
      signer: ctx.signer,
      verified: ctx.verified,
      managed: report.managed,
      drifted: report.resources.length,
      drift: report.resources.map((r) => ({
        kind: r.kind,
        name: r.name,
        id: r.id,
        patch: r.patch,
        change: r.change,
        action: r.action,
        held: r.held,
        sensitive: r.sensitive,
        changes: r.changes,
      })),
      errors: report.errors,
      target: ctx.target,
      state: ctx.state,
      mode: report.mode,
      frozen: report.frozen,
      soaking: report.soaking,
      wouldFreeze: report.wouldFreeze,
      summary: report.summary,
      exitCode: report.exitCode,
    },
    null,
    2,
  );
}
