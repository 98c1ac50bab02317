/**
 * `steward plan`: one detect + diff pass and the guardrails' decision on it, acting on nothing and
 * recording nothing. What it plans: the source's current revision, another branch, tag or commit of
 * the source (`--ref`), or a working tree (`--dir`). The decision (agent/plan/report.ts) is made on a
 * read-only copy of the agent's state; the output is text, Markdown or JSON (agent/plan/render.ts).
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  errorMessage,
  formatProblem,
  isStewardError,
  type SourceProblem,
  StewardError,
} from '../../core/errors.js';
import { escapeControls } from '../../core/text.js';
import { buildProviders, KINDS } from '../../providers/registry.js';
import type { DesiredResource, OwnedDoc } from '../../providers/types.js';
import { type Config, loadConfig } from '../config.js';
import { detect } from '../detect.js';
import { parseRevision } from '../manifest.js';
import {
  colourWanted,
  type PlanContext,
  type PlanFormat,
  renderJson,
  renderMarkdown,
  renderText,
  signerLine,
} from '../plan/render.js';
import { windowAt } from '../../policies/windows.js';
import { planReport } from '../plan/report.js';
import { lapsed } from '../reconciler.js';
import { buildSource } from '../source/from-config.js';
import { FULL_COMMIT, pinnedEngine } from '../source/pinned.js';
import { DesiredStateSource } from '../source/source.js';
import { FileStateStore } from '../state/file-store.js';
import { freshState, type PersistedState } from '../state/types.js';
import type { Io } from './command.js';
import { collectManifests } from './validate.js';

export interface PlanOptions {
  config: string;
  format: PlanFormat;
  /** `--no-color`. */
  noColor?: boolean;
  /** `--ref`: a branch, tag or full commit id of the configured source instead of source.ref. */
  ref?: string;
  /** `--dir`: a working tree of the source repository (source.path is read below it). */
  dir?: string;
  /** `--verify`: only check the revision's signatures under source.verify (CI gate): exit 0 or 1. */
  verify?: boolean;
}

/** What is planned: resources, and the commit they come from (none for a working tree). */
interface Target {
  sha: string | null;
  label: string;
  resources: DesiredResource[];
  signer: string | null;
  verified: true | null;
}

const rejected = (problems: readonly SourceProblem[], what: string, io: Io): StewardError => {
  for (const p of problems) io.err(escapeControls(formatProblem(p)));
  return new StewardError('REVISION_REJECTED', `${what} is invalid (${problems.length} problem(s))`);
};

/** The configured source at source.ref, or at `ref` (a branch, a tag, else a full commit id). */
/** plan reads one revision: its manifests are parsed for it alone (nothing compressed for a later poll). */
const ONE_SHOT = { oneShot: true } as const;

async function fromSource(
  config: Config,
  ref: string | undefined,
  cache: string | undefined,
  io: Io,
): Promise<Target> {
  const named = ref === undefined ? config : { ...config, source: { ...config.source, ref } };
  let source = buildSource(named, cache, Date.now, named.source.engine, ONE_SHOT);
  let poll = await source.poll();
  if (ref !== undefined && poll.kind === 'error' && isStewardError(poll.error, 'SOURCE_REF_NOT_FOUND')) {
    if (!FULL_COMMIT.test(ref))
      throw new StewardError(
        'SOURCE_REF_NOT_FOUND',
        `--ref ${ref}: no branch or tag of that name in the source, and not a full commit id (40 hex digits)`,
      );
    const base = buildSource(config, cache, Date.now, config.source.engine, ONE_SHOT);
    source = new DesiredStateSource(
      pinnedEngine(base.repo, ref),
      KINDS,
      Date.now,
      config.source.verify,
      ONE_SHOT,
    );
    poll = await source.poll();
  }
  if (poll.kind === 'error') throw poll.error;
  if (poll.kind === 'rejected') throw rejected(poll.problems, `revision ${poll.sha.slice(0, 12)}`, io);
  const revision = source.current!;
  return {
    sha: revision.sha,
    label: ref === undefined ? `source.ref ${config.source.ref}` : `--ref ${ref}`,
    resources: revision.resources,
    signer: revision.signer ?? null,
    verified: revision.verified ?? null,
  };
}

/** A working tree: every manifest under `dir`/source.path as it is on disk, committed or not. */
async function fromDir(config: Config, dir: string, io: Io): Promise<Target> {
  const folder = join(dir, config.source.path);
  const isDir = await stat(folder).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir)
    throw new StewardError(
      'USAGE',
      `--dir ${dir}: no folder ${folder}; --dir takes a checkout of the source repository, and source.path (${config.source.path}) is read below it`,
    );
  const files = await collectManifests(folder);
  const parsed = parseRevision(files, KINDS);
  if (!parsed.ok) throw rejected(parsed.problems, `the working tree ${dir}`, io);
  return {
    sha: null,
    label: `working tree ${dir}`,
    resources: parsed.resources,
    signer: null,
    verified: null,
  };
}

/** The agent's state, read and never written; a fresh state (and why) when there is none or it cannot be read. */
async function readState(dir: string): Promise<{ state: PersistedState; ctx: PlanContext['state'] }> {
  const store = new FileStateStore(dir);
  const path = store.statePath;
  const exists = await stat(path).then(
    () => true,
    (e: NodeJS.ErrnoException) => e.code !== 'ENOENT',
  );
  if (!exists) return { state: freshState(), ctx: { from: 'fresh', path, note: `no ${path} yet` } };
  try {
    return { state: await store.load(), ctx: { from: 'state-dir', path } };
  } catch (e) {
    const denied = /\b(EACCES|EPERM)\b/.test(errorMessage(e));
    const note = denied
      ? `${path} is not readable by this user (run plan as the agent's user to see its freeze, mode and backoff)`
      : `${path} cannot be read (${isStewardError(e) ? e.code : errorMessage(e)}: the agent would not start on it)`;
    return { state: freshState(), ctx: { from: 'fresh', path, note } };
  }
}

/**
 * Exit 0: nothing the agent would change; 2: drift it would revert (held or not); 1: an error
 * (including a resource that could not be read). With `verify`: exit 0 or 1.
 */
export async function plan(opts: PlanOptions, io: Io, env: NodeJS.ProcessEnv = {}): Promise<number> {
  const config = await loadConfig(opts.config);
  if (opts.verify && !config.source.verify)
    throw new StewardError(
      'USAGE',
      `--verify: ${opts.config} has no source.verify, so there are no signatures to check; add source.verify (docs/signatures.md)`,
    );
  // A throwaway Git cache: plan must not touch a running agent's state (a local source is read in place).
  const cache = config.source.kind === 'http' ? await mkdtemp(join(tmpdir(), 'steward-plan-')) : undefined;
  try {
    const target =
      opts.dir !== undefined
        ? await fromDir(config, opts.dir, io)
        : await fromSource(config, opts.ref, cache, io);
    if (opts.verify) {
      const verified = { revision: target.sha, verified: true, signer: target.signer };
      if (opts.format === 'json') io.out(JSON.stringify(verified, null, 2));
      else io.out(`revision ${target.sha?.slice(0, 12)}: ${signerLine({ revision: target.sha, ...target })}`);
      return 0;
    }
    const now = Date.now();
    const read = await readState(config.state.dir);
    // The next cycle would first end a freeze or an override past its end; plan does the same, writing nothing.
    const state = lapsed(read.state, now).next;
    const stateCtx = read.ctx;
    const detection = await detect(
      target.resources,
      KINDS,
      buildProviders(config, {}, { readOnly: true }),
      (k) => state.resources[k]?.lastApplied as OwnedDoc | undefined,
    );
    const report = planReport({
      // A working tree is a revision the agent has not seen: it would soak like any new one.
      sha: target.sha ?? `working tree ${opts.dir}`,
      detection,
      state,
      guardrails: config.guardrails,
      initialMode: config.reconcile.mode,
      kinds: KINDS,
      now,
      window: windowAt(config.windows, now, state.windowOverride ?? null),
    });
    const ctx: PlanContext = {
      revision: target.sha,
      target: target.label,
      signer: target.signer,
      verified: target.verified,
      state: stateCtx,
    };
    if (opts.format === 'json') io.out(renderJson(report, ctx));
    else if (opts.format === 'markdown') io.out(renderMarkdown(report, ctx).join('\n'));
    else {
      const colour = colourWanted({ noColor: opts.noColor === true, isTTY: io.isTTY === true, env });
      io.out(renderText(report, ctx, colour).join('\n'));
    }
    return report.exitCode;
  } finally {
    if (cache) await rm(cache, { recursive: true, force: true });
  }
}
