/**
 * The command line. Each command is one entry of COMMANDS: its flags, its help
 * text and its handler together (agent/cli/command.ts parses and prints help).
 * A handler's module is imported only when that command runs, so `--help` and
 * `--version` load nothing else. Exit codes: 0 ok / no drift, 1 error, 2 drift (plan).
 */
import { errorMessage, isStewardError, StewardError } from '../core/errors.js';
import { escapeControls } from '../core/text.js';
import {
  type Command,
  commandList,
  configFlag,
  configPath,
  defineCommand,
  formatHelp,
  type Io,
  invoke,
  unknownCommand,
} from './cli/command.js';
import { ADMIN_COMMANDS } from './cli/admin.js';
import { VERSION } from './version.js';

const stdio: Io = { out: (s) => process.stdout.write(`${s}\n`), err: (s) => process.stderr.write(`${s}\n`) };

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
const FORMATS = ['auto', 'pretty', 'json'] as const;

/** A flag value from a fixed list (checked before the config is read), or undefined. */
function oneOf<const T extends string>(
  flag: string,
  v: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (v === undefined || (allowed as readonly string[]).includes(v)) return v as T | undefined;
  throw new StewardError(
    'USAGE',
    `${flag} is one of ${allowed.join(', ')}, not "${v}"; see steward run --help`,
  );
}

const run = defineCommand({
  name: 'run',
  summary: 'run the agent until SIGTERM/SIGINT',
  details: [
    'Runs the agent in the foreground: polls the source, detects drift and reconciles it within the guardrails.',
    'SIGTERM/SIGINT: finish the action in flight, start no new one, flush state, exit 0.',
    'Exit 1 on a start-up error (the config, a second agent on the same state directory).',
  ].join('\n'),
  flags: {
    config: configFlag,
    'log-level': {
      type: 'string',
      value: 'LEVEL',
      help: 'fatal, error, warn, info, debug or trace (default: $STEWARD_LOG_LEVEL, then log.level)',
    },
    'log-format': {
      type: 'string',
      value: 'FORMAT',
      help: 'pretty (one readable line per record), json, or auto: pretty on a terminal (default: log.format)',
    },
  },
  async run({ values, env }) {
    const logLevel =
      values['log-level'] !== undefined
        ? oneOf('--log-level', values['log-level'], LEVELS)
        : oneOf('$STEWARD_LOG_LEVEL', env['STEWARD_LOG_LEVEL'] || undefined, LEVELS);
    const logFormat = oneOf('--log-format', values['log-format'], FORMATS);
    const [{ loadConfig }, { runAgent }] = await Promise.all([import('./config.js'), import('./run.js')]);
    return runAgent(await loadConfig(configPath(values.config, env)), { logLevel, logFormat });
  },
});

const plan = defineCommand({
  name: 'plan',
  summary: 'what the agent would change, and why it would not yet: acting on nothing',
  details: [
    "One detect + diff pass against the source's current revision (or --ref, or --dir), decided by the",
    "same guardrails a cycle uses, on a read-only copy of the agent's state: changes and records nothing.",
    'Per resource: create, update, delete or report only (drift the agent never reverts), and why it',
    'would not act now (held: frozen, observe, soak, backoff, cap, rate-limit, mass-drift, ...);',
    'old -> new values, a line diff for file contents (digests only for sensitive: true), a summary line.',
    'Colour on a terminal, unless --no-color or NO_COLOR; FORCE_COLOR forces it.',
    'Exit 0: nothing the agent would change (report-only drift alone included); 2: drift the agent would',
    'revert in enforce mode, held or not; 1: an error (the config, a rejected revision, an unreadable resource).',
    'See docs/plan.md.',
  ].join('\n'),
  flags: {
    config: configFlag,
    format: {
      type: 'string',
      value: 'FORMAT',
      help: 'text (default), markdown (a pull-request comment) or json',
    },
    json: {
      type: 'boolean',
      help: 'the same as --format json: {revision, signer, verified, managed, drifted, drift, errors, ...}',
    },
    ref: {
      type: 'string',
      value: 'REF',
      help: "plan this branch, tag or full commit id of the configured source (the agent's own state is left alone)",
    },
    dir: {
      type: 'string',
      value: 'PATH',
      help: 'plan a working tree of the source repository (uncommitted files included; source.path below it)',
    },
    'no-color': { type: 'boolean', help: 'no colour, even on a terminal' },
    verify: {
      type: 'boolean',
      help: "only check the source's signatures under source.verify (a CI gate): exit 0 verified, 1 not",
    },
  },
  async run({ values, io, env }) {
    const [{ plan }, { PLAN_FORMATS }] = await Promise.all([
      import('./cli/plan.js'),
      import('./plan/render.js'),
    ]);
    const format = values.format ?? (values.json === true ? 'json' : 'text');
    if (!(PLAN_FORMATS as readonly string[]).includes(format))
      throw new StewardError(
        'USAGE',
        `--format ${format}: use one of ${PLAN_FORMATS.join(', ')}; see steward plan --help`,
      );
    if (values.json === true && format !== 'json')
      throw new StewardError('USAGE', `--json and --format ${format} disagree; see steward plan --help`);
    if (values.ref !== undefined && values.dir !== undefined)
      throw new StewardError('USAGE', '--ref and --dir: plan one or the other; see steward plan --help');
    if (values.verify === true && values.dir !== undefined)
      throw new StewardError(
        'USAGE',
        '--verify checks signatures of a commit; a --dir working tree has none',
      );
    return plan(
      {
        config: configPath(values.config, env),
        format: format as 'text' | 'markdown' | 'json',
        noColor: values['no-color'] === true,
        ...(values.ref !== undefined ? { ref: values.ref } : {}),
        ...(values.dir !== undefined ? { dir: values.dir } : {}),
        verify: values.verify === true,
      },
      // Colour only on a terminal: the process's own stdout, unless the caller's io says.
      io === stdio ? { ...io, isTTY: process.stdout.isTTY === true } : io,
      env,
    );
  },
});

const validate = defineCommand({
  name: 'validate',
  summary: 'check manifests before you push them',
  details: [
    'Parses and validates the manifests under DIR as the agent would a new revision.',
    'Exit 0: valid; 1: one file:line:col: message line per problem on stdout.',
    "With --verify (and no DIR): checks the configured source's tip, signatures under source.verify",
    'included, exactly as the agent would accept it (the same check as plan --verify): a CI gate.',
  ].join('\n'),
  flags: {
    config: configFlag,
    verify: {
      type: 'boolean',
      help: "check the configured source's revision and its signatures instead of DIR: exit 0 accepted, 1 not",
    },
  },
  positionals: [
    { name: 'DIR', optional: true, help: 'every *.yaml / *.yml below it (dot-folders such as .git skipped)' },
  ],
  async run({ values, positionals, io, env }) {
    if (values.verify === true) {
      if (positionals[0] !== undefined)
        throw new StewardError(
          'USAGE',
          'validate --verify checks the configured source, not a DIR; see steward validate --help',
        );
      const { plan } = await import('./cli/plan.js');
      return plan({ config: configPath(values.config, env), format: 'text', verify: true }, io, env);
    }
    if (positionals[0] === undefined)
      throw new StewardError('USAGE', 'validate needs DIR (or --verify); see steward validate --help');
    const { validate } = await import('./cli/validate.js');
    return validate(positionals[0], io);
  },
});

const quickstart = defineCommand({
  name: 'quickstart',
  summary: 'set up and run the local demo (no cloud account needed)',
  details: [
    'Creates (once) a desired-state Git repository from examples/quickstart, a directory of',
    'managed files and a config under DIR, then runs the agent on them. Stop with Ctrl-C.',
  ].join('\n'),
  flags: { dir: { type: 'string', value: 'DIR', help: 'where the demo lives (default: .quickstart)' } },
  async run({ values, io }) {
    const { quickstart } = await import('./quickstart.js');
    return quickstart(values.dir ?? '.quickstart', io);
  },
});

const version = defineCommand({
  name: 'version',
  summary: 'print the version',
  details: 'Prints "steward <version>", as steward --version does.',
  flags: {},
  async run({ io }) {
    io.out(`steward ${VERSION}`);
    return 0;
  },
});

const help = defineCommand({
  name: 'help',
  summary: "show the commands, or one command's usage and flags",
  details: 'steward help COMMAND says what steward COMMAND --help says.',
  flags: {},
  positionals: [{ name: 'COMMAND', help: 'one of the commands above', optional: true }],
  async run({ positionals, io }) {
    io.out(formatHelp(positionals[0] === undefined ? steward : await find(positionals[0])));
    return 0;
  },
});

/** Every command, in the order `steward --help` lists them. */
const COMMANDS: readonly Command[] = [run, plan, validate, ...ADMIN_COMMANDS, quickstart, version, help];

/** steward itself: the options before a command. */
const steward = defineCommand({
  name: '',
  summary: 'a GitOps pull agent',
  usage: 'steward <command> [options]',
  details: commandList(COMMANDS),
  notes: [
    "See steward <command> --help for a command's flags.",
    'The config path defaults to $STEWARD_CONFIG, then ./steward.yaml.',
  ].join('\n'),
  flags: { version: { type: 'boolean', help: 'print the version' } },
  async run({ values, io, env }) {
    if (values.version) return version.run({ values: {}, positionals: [], io, env });
    io.err(formatHelp(steward));
    return 1;
  },
});

async function find(name: string): Promise<Command> {
  const names = COMMANDS.map((c) => c.name);
  return COMMANDS.find((c) => c.name === name) ?? (await unknownCommand(name, names, steward));
}

/** `steward -c x plan`: say that a command's option goes after the command. */
function misplaced(option: string): string | undefined {
  const known = COMMANDS.some((c) =>
    Object.entries(c.flags).some(([name, f]) => option === `--${name}` || option === `-${f.short}`),
  );
  return known ? `options go after the command: steward <command> ${option} …` : undefined;
}

export async function main(
  argv: readonly string[],
  io: Io = stdio,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined) return await steward.run({ values: {}, positionals: [], io, env });
    if (first.startsWith('-')) return await invoke(steward, argv, io, env, misplaced);
    return await invoke(await find(first), rest, io, env);
  } catch (e) {
    // Messages may quote data (a config value, a file name): shown with control characters escaped.
    if (isStewardError(e)) io.err(`steward: ${e.code}: ${escapeControls(e.message)}`);
    else io.err(`steward: ${escapeControls(errorMessage(e))}`);
    return 1;
  }
}
