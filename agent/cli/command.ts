/**
 * What a CLI command is (its flags, positionals, help text and handler, declared
 * together), how its arguments are parsed (`node:util` parseArgs, strict), and
 * how its help and usage errors read. No command lives here: see agent/cli.ts.
 */
import { suggest } from '../../core/suggest.js';
// biome-ignore lint/style/noRestrictedImports: types only, erased at build
import type { parseArgs } from 'node:util';
import { StewardError } from '../../core/errors.js';
import { nodeUtil } from '../../core/builtins.js';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  /** `out` is a terminal (colour may be used); absent: it is not. */
  isTTY?: boolean;
}

export interface Flag {
  readonly type: 'string' | 'boolean';
  /** One letter: `-c`. */
  readonly short?: string;
  /** The value's placeholder in help (`FILE`); string flags only. */
  readonly value?: string;
  readonly help: string;
}

export type Flags = Readonly<Record<string, Flag>>;

/** The parsed flags: a string flag gives a non-empty string, a boolean flag `true`; absent ones are undefined. */
export type Values<F extends Flags> = {
  readonly [K in keyof F]?: F[K]['type'] extends 'boolean'
    ? boolean
    : F[K]['type'] extends 'string'
      ? string
      : string | boolean;
};

export interface Positional {
  readonly name: string;
  readonly help: string;
  readonly optional?: boolean;
}

export interface Invocation<F extends Flags> {
  readonly values: Values<F>;
  readonly positionals: readonly string[];
  readonly io: Io;
  readonly env: NodeJS.ProcessEnv;
}

export interface Command<F extends Flags = Flags> {
  /** The word after `steward`; empty for steward itself. */
  readonly name: string;
  /** One line for `steward --help`. */
  readonly summary: string;
  /** The usage line, when the one made from the flags does not fit (steward itself). */
  readonly usage?: string;
  /** Paragraphs for `steward CMD --help`, after the usage line. */
  readonly details?: string;
  /** A last paragraph, after the options. */
  readonly notes?: string;
  readonly flags: F;
  readonly positionals?: readonly Positional[];
  run(call: Invocation<F>): Promise<number>;
}

/** Declares a command; the flags' types flow into its handler. */
export function defineCommand<const F extends Flags>(command: Command<F>): Command<F> {
  return command;
}

/** `-c, --config FILE`: the agent config, shared by every command that reads it. */
export const configFlag = {
  type: 'string',
  short: 'c',
  value: 'FILE',
  help: 'the agent config (default: $STEWARD_CONFIG, then ./steward.yaml)',
} as const satisfies Flag;

/** The config path: the flag, else $STEWARD_CONFIG, else ./steward.yaml. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env['STEWARD_CONFIG'] ?? 'steward.yaml';
}

const helpFlag = { type: 'boolean', short: 'h', help: 'show this help' } as const satisfies Flag;

const usageError = (command: Command, message: string): StewardError =>
  new StewardError('USAGE', `${message}; see steward ${command.name ? `${command.name} ` : ''}--help`);

/** The closest of `candidates` to a typo. Imported when needed: the config module is not small. */

/** Throws a USAGE error for a command word that is not in `names`. */
export async function unknownCommand(word: string, names: readonly string[], root: Command): Promise<never> {
  const near = suggest(word, names);
  throw usageError(root, `unknown command "${word}"${near ? ` (did you mean "${near}"?)` : ''}`);
}

type Token = ReturnType<typeof parseArgs>['tokens'] extends (infer T)[] | undefined ? T : never;

/** Parses `args` for `command` and runs it; `--help` anywhere (before `--`) prints its help instead. */
export async function invoke(
  command: Command,
  args: readonly string[],
  io: Io,
  env: NodeJS.ProcessEnv,
  /** Why an option unknown here may still be right elsewhere (steward itself: it goes after the command). */
  misplaced?: (option: string) => string | undefined,
): Promise<number> {
  const options = { ...command.flags, help: helpFlag };
  const { tokens } = nodeUtil().parseArgs({
    args: [...args],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) {
    io.out(formatHelp(command));
    return 0;
  }
  const declared = command.positionals ?? [];
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = nodeUtil().parseArgs({
      args: [...args],
      options,
      strict: true,
      allowPositionals: declared.length > 0,
    });
  } catch (e) {
    const why = await explain(command, tokens, misplaced);
    throw usageError(command, why ?? String((e as Error).message).split('\n')[0]!);
  }
  // parseArgs takes `--config=` as the value "": no file is named, so it is a missing value.
  for (const t of tokens) {
    if (t.kind !== 'option' || t.value !== '') continue;
    const flag = flagOf(command, t.name);
    if (flag?.type === 'string') throw usageError(command, needsValue(t.rawName, flag));
  }
  const { positionals } = parsed;
  if (positionals.length > declared.length)
    throw usageError(command, `unexpected argument "${positionals[declared.length]}"`);
  const missing = declared.slice(positionals.length).find((p) => !p.optional);
  if (missing) throw usageError(command, `${command.name} needs ${missing.name}`);
  const { help: _, ...values } = parsed.values;
  return command.run({ values, positionals, io, env });
}

/** A command's own flag by name (never one of Object.prototype's: `--constructor` is unknown). */
const flagOf = (command: Command, name: string): Flag | undefined =>
  Object.hasOwn(command.flags, name) ? command.flags[name] : undefined;

const needsValue = (raw: string, flag: Flag): string =>
  `${raw} needs a value (${raw} ${flag.value ?? 'VALUE'})`;

/** Says in steward's words what parseArgs refused (the first bad token), or undefined to use its message. */
async function explain(
  command: Command,
  tokens: readonly Token[],
  misplaced: ((option: string) => string | undefined) | undefined,
): Promise<string | undefined> {
  for (const t of tokens) {
    if (t.kind === 'positional') {
      if (!command.positionals?.length) return `unexpected argument "${t.value}"`;
      continue;
    }
    if (t.kind !== 'option') continue;
    const flag = flagOf(command, t.name);
    if (flag === undefined) {
      const long = t.rawName.startsWith('--');
      const near = long ? suggest(t.name, [...Object.keys(command.flags), 'help']) : undefined;
      const hint = near !== undefined ? `did you mean --${near}?` : misplaced?.(t.rawName);
      return `unknown option ${t.rawName}${hint ? ` (${hint})` : ''}`;
    }
    if (flag.type === 'boolean' && t.value !== undefined) return `${t.rawName} takes no value`;
    if (flag.type === 'string' && t.value === undefined) return needsValue(t.rawName, flag);
    if (flag.type === 'string' && !t.inlineValue && t.value?.startsWith('-'))
      return `${needsValue(t.rawName, flag)}, not the option ${t.value}`;
  }
  return undefined;
}

/** Two columns, the second aligned. */
function table(rows: ReadonlyArray<readonly [string, string]>): string[] {
  const width = Math.max(...rows.map(([a]) => a.length)) + 2;
  return rows.map(([a, b]) => `  ${a.padEnd(width)}${b}`);
}

function flagLabel(name: string, flag: Flag): string {
  const long = `--${name}${flag.type === 'string' ? ` ${flag.value ?? 'VALUE'}` : ''}`;
  return flag.short ? `-${flag.short}, ${long}` : `    ${long}`;
}

/** `steward plan [-c FILE] [--json]`. */
export function synopsis(command: Command): string {
  const flags = Object.entries(command.flags).map(([name, f]) => {
    const label = f.short ? `-${f.short}` : `--${name}`;
    return `[${label}${f.type === 'string' ? ` ${f.value ?? 'VALUE'}` : ''}]`;
  });
  const positionals = (command.positionals ?? []).map((p) => (p.optional ? `[${p.name}]` : p.name));
  return ['steward', command.name, ...flags, ...positionals].filter(Boolean).join(' ');
}

/** The help of a command: usage, details, arguments, options, notes. */
export function formatHelp(command: Command): string {
  const sections = [`usage: ${command.usage ?? synopsis(command)}`];
  if (command.details) sections.push(command.details);
  if (command.positionals?.length)
    sections.push(['arguments:', ...table(command.positionals.map((p) => [p.name, p.help]))].join('\n'));
  const flags = Object.entries({ ...command.flags, help: helpFlag });
  sections.push(['options:', ...table(flags.map(([name, f]) => [flagLabel(name, f), f.help]))].join('\n'));
  if (command.notes) sections.push(command.notes);
  return sections.join('\n\n');
}

/** The command list for steward's own help: one line each. */
export function commandList(commands: readonly Command[]): string {
  return ['commands:', ...table(commands.map((c) => [c.name, c.summary]))].join('\n');
}
