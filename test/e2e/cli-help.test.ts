/**
 * The command line's own surface: help for steward and for each command,
 * usage errors (exit 1, one line with a hint), the version, and the real bin
 * reached through a symlink the way `npm install -g` and `npx` put it on PATH.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { main } from '../../agent/cli.js';

async function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s) }, env);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
const ADMIN = ['status', 'drift', 'freeze', 'unfreeze', 'approve', 'mode', 'audit', 'reconcile', 'fleet'];
const COMMANDS = ['run', 'plan', 'validate', ...ADMIN, 'quickstart', 'version', 'help'];

test('steward --help, -h and steward help list every command with one line each, on stdout, exit 0', async () => {
  const outs = [];
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = await run(args);
    assert.equal(r.code, 0, `${args}: ${r.err}`);
    assert.equal(r.err, '', `${args} writes nothing to stderr`);
    outs.push(r.out);
  }
  assert.equal(outs[1], outs[0]);
  assert.equal(outs[2], outs[0]);
  const help = outs[0]!;
  assert.match(help, /^usage: steward <command> \[options\]/);
  for (const c of COMMANDS) assert.match(help, new RegExp(`^  ${c} +\\S.*$`, 'm'), `a line for ${c}`);
  assert.match(help, /steward <command> --help/, 'says where the per-command flags are');
  assert.match(help, /--version/);
  assert.match(help, /\$STEWARD_CONFIG, then \.\/steward\.yaml/);
});

test('bare steward prints the command list to stderr and exits 1 (as before)', async () => {
  const r = await run([]);
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.match(r.err, /^ {2}plan +\S/m);
});

/** Each command's help: its usage line, then every flag it takes (and only those). */
const HELP: Record<string, { usage: RegExp; has: RegExp[]; lacks: RegExp[] }> = {
  run: {
    usage: /^usage: steward run \[-c FILE\] \[--log-level LEVEL\] \[--log-format FORMAT\]$/m,
    has: [
      /^ {2}-c, --config FILE +.*\$STEWARD_CONFIG.*steward\.yaml/m,
      /SIGTERM/,
      /^ {6}--log-level LEVEL +.*\$STEWARD_LOG_LEVEL/m,
      /^ {6}--log-format FORMAT +pretty.*json/m,
    ],
    lacks: [/--json/, /--dir/],
  },
  plan: {
    usage:
      /^usage: steward plan \[-c FILE\] \[--format FORMAT\] \[--json\] \[--ref REF\] \[--dir PATH\] \[--no-color\] \[--verify\]$/m,
    has: [
      /^ {2}-c, --config FILE +\S/m,
      /^ {6}--json +\S/m,
      /^ {6}--format FORMAT +.*markdown/m,
      /^ {6}--ref REF +\S/m,
      /^ {6}--dir PATH +.*uncommitted/m,
      /NO_COLOR/,
      /exit 0.*2.*1/is,
    ],
    lacks: [/--api/],
  },
  validate: {
    usage: /^usage: steward validate \[-c FILE\] \[--verify\] \[DIR\]$/m,
    has: [/^ {2}DIR +\S/m, /file:line:col/, /^ {6}--verify +\S/m, /plan --verify/],
    lacks: [/--json/],
  },
  quickstart: {
    usage: /^usage: steward quickstart \[--dir DIR\]$/m,
    has: [/^ {6}--dir DIR +.*\.quickstart/m],
    lacks: [/--config/],
  },
  version: { usage: /^usage: steward version$/m, has: [], lacks: [/--json/] },
  help: { usage: /^usage: steward help \[COMMAND\]$/m, has: [/^ {2}COMMAND +\S/m], lacks: [] },
  status: {
    usage: /^usage: steward status \[-c FILE\] \[--api URL\] \[--token-file FILE\] \[--json\]$/m,
    has: [/^ {6}--token-file FILE +.*\$STEWARD_TOKEN_FILE.*admin\.tokenFile/m, /never given as a flag/],
    lacks: [/--token /, /--reason/],
  },
  freeze: {
    usage: /^usage: steward freeze \[--reason TEXT\] \[--for DURATION\] \[--until TIME\] \[-c FILE\] /m,
    has: [/^ {6}--reason TEXT +\S/m],
    lacks: [/--token /],
  },
  approve: {
    usage: /^usage: steward approve \[-c FILE\] .*\[--json\] SHA$/m,
    has: [/^ {2}SHA +\S/m],
    lacks: [],
  },
  mode: { usage: /^usage: steward mode .* MODE$/m, has: [/observe or enforce/], lacks: [] },
  audit: { usage: /^usage: steward audit \[--limit N\] /m, has: [/1-1000/], lacks: [] },
};

test('steward CMD --help prints that command usage and flags, exit 0; -h and steward help CMD say the same', async () => {
  for (const [name, want] of Object.entries(HELP)) {
    const r = await run([name, '--help']);
    assert.equal(r.code, 0, `${name} --help: ${r.err}`);
    assert.equal(r.err, '');
    assert.match(r.out, want.usage, `${name} --help:\n${r.out}`);
    for (const re of want.has) assert.match(r.out, re, `${name} --help:\n${r.out}`);
    for (const re of want.lacks) assert.doesNotMatch(r.out, re, `${name} --help:\n${r.out}`);
    assert.match(r.out, /^ {2}-h, --help +\S/m);
    assert.equal((await run([name, '-h'])).out, r.out, `${name} -h`);
    assert.equal((await run(['help', name])).out, r.out, `help ${name}`);
  }
});

test('--help wins over the other arguments, and nothing runs', async () => {
  // A config that cannot be read: had plan run, it would fail with CONFIG_READ.
  const r = await run(['plan', '-c', '/nonexistent/steward.yaml', '--json', '--help']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^usage: steward plan/);
  // After `--` it is an argument, not a flag.
  const v = await run(['validate', '--', '--help']);
  assert.equal(v.code, 1);
  assert.match(v.err, /USAGE: cannot read --help/);
});

/** [argv, what stderr says] — each exits 1 with one `steward: USAGE: …` line and runs nothing. */
const USAGE_ERRORS: Array<[string[], RegExp]> = [
  [['pln'], /unknown command "pln" \(did you mean "plan"\?\); see steward --help$/],
  [['valdiate', 'x'], /unknown command "valdiate" \(did you mean "validate"\?\); see steward --help$/],
  [['frobnicate'], /unknown command "frobnicate"; see steward --help$/],
  [['help', 'pln'], /unknown command "pln" \(did you mean "plan"\?\); see steward --help$/],
  [['plan', '--jsn'], /unknown option --jsn \(did you mean --json\?\); see steward plan --help$/],
  [['plan', '--bogus'], /unknown option --bogus; see steward plan --help$/],
  [['plan', '-x'], /unknown option -x; see steward plan --help$/],
  [['plan', '--constructor'], /unknown option --constructor; see steward plan --help$/],
  [['run', '--json'], /unknown option --json; see steward run --help$/],
  [['run', '--dir', 'x'], /unknown option --dir; see steward run --help$/],
  [
    ['quickstart', '--dri', 'x'],
    /unknown option --dri \(did you mean --dir\?\); see steward quickstart --help$/,
  ],
  [['plan', '-c'], /-c needs a value \(-c FILE\); see steward plan --help$/],
  [['plan', '--config'], /--config needs a value \(--config FILE\); see steward plan --help$/],
  [['plan', '--config='], /--config needs a value \(--config FILE\); see steward plan --help$/],
  [['plan', '-c', '--json'], /-c needs a value \(-c FILE\), not the option --json; see steward plan --help$/],
  [['quickstart', '--dir'], /--dir needs a value \(--dir DIR\); see steward quickstart --help$/],
  [['plan', '--json=yes'], /--json takes no value; see steward plan --help$/],
  [['plan', 'extra'], /unexpected argument "extra"; see steward plan --help$/],
  [['validate'], /validate needs DIR \(or --verify\); see steward validate --help$/],
  [
    ['validate', '--verify', 'fleet'],
    /validate --verify checks the configured source, not a DIR; see steward validate --help$/,
  ],
  [['validate', 'a', 'b'], /unexpected argument "b"; see steward validate --help$/],
  [['version', 'now'], /unexpected argument "now"; see steward version --help$/],
  [['help', 'plan', 'run'], /unexpected argument "run"; see steward help --help$/],
  [['--verison'], /unknown option --verison \(did you mean --version\?\); see steward --help$/],
  [['--bogus'], /unknown option --bogus; see steward --help$/],
  [
    ['status', '--token', 'x'],
    /unknown option --token \(did you mean --token-file\?\); see steward status --help$/,
  ],
  [['approve'], /approve needs SHA; see steward approve --help$/],
  [['mode'], /mode needs MODE; see steward mode --help$/],
  [['staus'], /unknown command "staus" \(did you mean "status"\?\); see steward --help$/],
  [
    ['-c', 'x.yaml', 'plan'],
    /unknown option -c \(options go after the command: steward <command> -c …\); see steward --help$/,
  ],
];

test('usage errors: exit 1, one line naming the problem with a did-you-mean and where to look', async () => {
  // $STEWARD_CONFIG names a file that cannot be read: a command that ran would say CONFIG_READ.
  const env = { STEWARD_CONFIG: '/nonexistent/steward.yaml' };
  for (const [args, message] of USAGE_ERRORS) {
    const r = await run(args, env);
    assert.equal(r.code, 1, `${args.join(' ')}`);
    assert.equal(r.out, '', `${args.join(' ')} prints nothing on stdout`);
    const lines = r.err.split('\n');
    assert.equal(lines.length, 1, `${args.join(' ')}: one line:\n${r.err}`);
    assert.match(lines[0]!, /^steward: USAGE: /, args.join(' '));
    assert.match(lines[0]!, message, args.join(' '));
  }
});

test('the config path: -c, --config and --config= beat $STEWARD_CONFIG, which beats ./steward.yaml', async () => {
  const env = { STEWARD_CONFIG: '/nonexistent/from-env.yaml' };
  const cases: Array<[string[], NodeJS.ProcessEnv, string]> = [
    [['plan'], {}, 'steward.yaml'],
    [['plan'], env, '/nonexistent/from-env.yaml'],
    [['plan', '-c', '/nonexistent/a.yaml'], env, '/nonexistent/a.yaml'],
    [['plan', '-c/nonexistent/b.yaml'], env, '/nonexistent/b.yaml'],
    [['plan', '--config', '/nonexistent/c.yaml'], env, '/nonexistent/c.yaml'],
    [['plan', '--config=/nonexistent/d.yaml', '--json'], env, '/nonexistent/d.yaml'],
    [['run', '--config=/nonexistent/e.yaml'], env, '/nonexistent/e.yaml'],
  ];
  for (const [args, e, path] of cases) {
    const r = await run(args, e);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.err, /^steward: CONFIG_READ: cannot read config file "(.*)"/, args.join(' '));
    assert.equal(/config file "(.*?)"/.exec(r.err)![1], path, args.join(' '));
  }
});

test('steward --version and steward version print "steward <package.json version>"', async () => {
  for (const args of [['--version'], ['version']]) {
    const r = await run(args);
    assert.equal(r.code, 0, `${args}: ${r.err}`);
    assert.equal(r.out, `steward ${version}`);
    assert.equal(r.err, '');
  }
});

function exec(
  file: string,
  args: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((done) =>
    execFile(file, args, opts, (e, out, err) =>
      done({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out, err }),
    ),
  );
}

test('the built bin works through symlinks on PATH, as npm install -g and npx install it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steward-bin-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // npx / a local install: node_modules/.bin/steward → ../steward/bin/steward.js, the package itself a link.
  await mkdir(join(dir, 'node_modules', '.bin'), { recursive: true });
  await symlink(resolve('.'), join(dir, 'node_modules', 'steward'), 'dir');
  await symlink('../steward/bin/steward.js', join(dir, 'node_modules', '.bin', 'steward'));
  // npm install -g: <prefix>/bin/steward → an absolute path to the package's bin.
  await mkdir(join(dir, 'global-bin'));
  await symlink(resolve('bin/steward.js'), join(dir, 'global-bin', 'steward'));

  for (const bin of [join(dir, 'node_modules', '.bin'), join(dir, 'global-bin')]) {
    // Only this bin dir and node's own: `steward` must be found on PATH, from an unrelated cwd.
    const env = { PATH: [bin, dirname(process.execPath), '/usr/bin', '/bin'].join(delimiter) };
    const v = await exec('steward', ['--version'], { cwd: dir, env });
    assert.equal(v.code, 0, `${bin}: ${v.err}`);
    assert.equal(v.out, `steward ${version}\n`);
    const h = await exec('steward', ['--help'], { cwd: dir, env });
    assert.equal(h.code, 0, h.err);
    assert.match(h.out, /^usage: steward <command> \[options\]/);
    assert.match(h.out, /steward <command> --help/);
    const p = await exec('steward', ['plan', '--jsn'], { cwd: dir, env });
    assert.equal(p.code, 1);
    assert.match(p.err, /^steward: USAGE: unknown option --jsn \(did you mean --json\?\)/);
    // The default config is ./steward.yaml of the caller's cwd, not of the installation.
    const c = await exec('steward', ['plan'], { cwd: dir, env });
    assert.equal(c.code, 1);
    assert.match(c.err, /CONFIG_READ: cannot read config file "steward\.yaml"/);
  }
});

test('the bin of a checkout that was never built says how to build it, not a stack trace', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steward-unbuilt-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'bin'));
  await copyFile('bin/steward.js', join(dir, 'bin', 'steward.js'));
  const r = await exec(process.execPath, [join(dir, 'bin', 'steward.js'), '--version'], {
    cwd: dir,
    env: {},
  });
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.equal(
    r.err,
    `steward: ${join(dir, 'dist', 'agent', 'cli.js')} is missing: run npm ci (or npm run build) in ${dir}\n`,
  );
});

test("README's Command line section names every command and flag the help lists, and how to install the command", async () => {
  const readme = await readFile('README.md', 'utf8');
  const section = readme.split(/^## /m).find((s) => s.startsWith('Command line\n'));
  assert.ok(section, 'README has a "## Command line" section');
  const listed = (await run(['--help'])).out.split('\n\n').find((p) => p.startsWith('commands:'))!;
  const names = [...listed.matchAll(/^ {2}(\S+) /gm)].map((m) => m[1]!);
  assert.deepEqual(names, COMMANDS);
  for (const name of names) {
    assert.match(section, new RegExp(`\`steward ${name}\\b`), `README shows steward ${name}`);
    const flags = [...(await run([name, '--help'])).out.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]);
    for (const f of flags) assert.ok(section.includes(f), `README mentions ${name} ${f}`);
  }
  assert.match(section, /^npx steward /m, 'README shows npx steward');
  assert.match(section, /^npm install -g /m, 'README shows npm install -g');
});

test('output into a closed pipe (steward plan | head): exit quietly, no EPIPE stack trace', async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['bin/steward.js', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  child.stdout.destroy(); // the reader is gone before the first line, as `| head -0` would leave it
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.doesNotMatch(err, /EPIPE|Error/, err);
  assert.equal(code, 0);
});
