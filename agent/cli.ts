/**
 * The command line: run, plan, validate, quickstart, version.
 * Exit codes: 0 ok / no drift, 1 error, 2 drift (plan).
 */
import { readdir, readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { KINDS, buildProviders } from '../providers/registry.js';
import type { OwnedDoc } from '../providers/types.js';
import { buildSource } from './build.js';
import { loadConfig } from './config.js';
import { detect } from './detect.js';
import { errorMessage, formatProblem, isStewardError, StewardError } from '../core/errors.js';
import { parseRevision, type ManifestFile } from './manifest.js';
import { displayPatchOf, formatDisplayOp } from './patch-view.js';
import { FileStateStore } from './state/file-store.js';
import { runAgent } from './run.js';
import { VERSION } from './version.js';

const USAGE = `usage: steward <command> [options]

commands:
  run [-c steward.yaml]              run the agent (SIGTERM/SIGINT: finish the action in flight, exit 0)
  plan [-c steward.yaml] [--json]    one detect + diff pass, no action; exit 0 no drift, 2 drift, 1 error
  validate DIR                       check manifests; exit 0 valid, 1 with file:line:col lines
  quickstart [--dir .quickstart]     set up and run the local demo (no cloud account needed)
  version                            print the version

The config path defaults to $STEWARD_CONFIG, then ./steward.yaml.`;

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: Io = { out: (s) => process.stdout.write(`${s}\n`), err: (s) => process.stderr.write(`${s}\n`) };

interface Args {
  command: string | undefined;
  positional: string[];
  config: string;
  json: boolean;
  dir: string | undefined;
}

function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): Args {
  const args: Args = {
    command: undefined,
    positional: [],
    config: env['STEWARD_CONFIG'] ?? 'steward.yaml',
    json: false,
    dir: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new StewardError('USAGE', `${a} needs a value`);
      return v;
    };
    if (a === '-c' || a === '--config') args.config = value();
    else if (a.startsWith('--config=')) args.config = a.slice('--config='.length);
    else if (a === '--json') args.json = true;
    else if (a === '--dir') args.dir = value();
    else if (a === '-h' || a === '--help') args.command = 'help';
    else if (a.startsWith('-')) throw new StewardError('USAGE', `unknown option ${a}`);
    else if (args.command === undefined) args.command = a;
    else args.positional.push(a);
  }
  return args;
}

/** Collects *.yaml / *.yml under a directory (skipping dot-folders such as .git). */
async function collectManifests(root: string): Promise<ManifestFile[]> {
  const out: ManifestFile[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory() && !e.name.startsWith('.')) await walk(p);
      else if (e.isFile() && /\.ya?ml$/i.test(e.name))
        out.push({ file: relative(process.cwd(), p) || p, text: await readFile(p, 'utf8') });
    }
  };
  await walk(root);
  return out;
}

async function cmdValidate(args: Args, io: Io): Promise<number> {
  const dir = args.positional[0];
  if (!dir) throw new StewardError('USAGE', 'validate needs a directory: steward validate DIR');
  let files: ManifestFile[];
  try {
    files = await collectManifests(dir);
  } catch (e) {
    throw new StewardError('USAGE', `cannot read ${dir}: ${errorMessage(e)}`);
  }
  const parsed = parseRevision(files, KINDS);
  if (!parsed.ok) {
    for (const p of parsed.problems) io.out(formatProblem(p));
    io.err(`${parsed.problems.length} problem(s) in ${files.length} file(s)`);
    return 1;
  }
  io.err(`ok: ${parsed.resources.length} resource(s) in ${files.length} file(s)`);
  return 0;
}

async function cmdPlan(args: Args, io: Io): Promise<number> {
  const config = await loadConfig(args.config);
  // A throwaway Git cache: plan must not touch a running agent's state.
  const cache = config.source.kind === 'http' ? await mkdtemp(join(tmpdir(), 'steward-plan-')) : undefined;
  try {
    const source = buildSource(config, cache);
    const poll = await source.poll();
    if (poll.kind === 'error') throw poll.error;
    if (poll.kind === 'rejected') {
      for (const p of poll.problems) io.err(formatProblem(p));
      throw new StewardError(
        'REVISION_REJECTED',
        `revision ${poll.sha.slice(0, 12)} is invalid (${poll.problems.length} problem(s))`,
      );
    }
    const revision = source.current!;
    const state = await new FileStateStore(config.state.dir).load();
    const d = await detect(
      revision.resources,
      KINDS,
      buildProviders(config, {}, { readOnly: true }),
      (k) => state.resources[k]?.lastApplied as OwnedDoc | undefined,
    );
    const drift = d.drift.map((x) => ({
      kind: x.resource.kind,
      name: x.resource.name,
      id: x.id,
      patch: displayPatchOf(KINDS, x.resource, x.patch, x.observed),
    }));
    const errors = d.errors.map((x) => ({
      kind: x.resource.kind,
      name: x.resource.name,
      id: x.id,
      code: x.code,
      error: x.error,
    }));
    if (args.json) {
      io.out(
        JSON.stringify(
          { revision: revision.sha, managed: d.managed, drifted: drift.length, drift, errors },
          null,
          2,
        ),
      );
    } else {
      io.out(
        `revision ${revision.sha.slice(0, 12)}: ${d.managed} managed, ${drift.length} drifted, ${errors.length} unreadable`,
      );
      for (const x of drift) {
        io.out(`\n~ ${x.kind}/${x.name}${x.id ? ` (${x.id})` : ''}`);
        for (const op of x.patch) for (const line of formatDisplayOp(op)) io.out(line);
      }
      for (const x of errors) io.out(`\n! ${x.kind}/${x.name}: ${x.error}`);
    }
    if (errors.length > 0) return 1;
    return drift.length > 0 ? 2 : 0;
  } finally {
    if (cache) await rm(cache, { recursive: true, force: true });
  }
}

async function cmdRun(args: Args): Promise<number> {
  return runAgent(await loadConfig(args.config));
}

export async function main(
  argv: readonly string[],
  io: Io = stdio,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  try {
    const args = parseArgs(argv, env);
    switch (args.command) {
      case 'run':
        return await cmdRun(args);
      case 'plan':
        return await cmdPlan(args, io);
      case 'validate':
        return await cmdValidate(args, io);
      case 'quickstart': {
        const { quickstart } = await import('./quickstart.js');
        return await quickstart(args.dir ?? '.quickstart', io);
      }
      case 'version':
        io.out(`steward ${VERSION}`);
        return 0;
      case 'help':
        io.out(USAGE);
        return 0;
      case undefined:
        io.err(USAGE);
        return 1;
      default:
        throw new StewardError('USAGE', `unknown command "${args.command}"`);
    }
  } catch (e) {
    if (isStewardError(e)) {
      io.err(`steward: ${e.code}: ${e.message}`);
      if (e.code === 'USAGE') io.err(USAGE);
    } else io.err(`steward: ${errorMessage(e)}`);
    return 1;
  }
}
