#!/usr/bin/env node
/**
 * Provisions what the test suite needs beyond `npm ci`, so that `npm test`
 * alone passes on a fresh machine. Run by `npm test` before anything else.
 *
 * - `git` on the PATH (the end-to-end tests drive real git and `git http-backend`);
 * - `moto_server` for the EC2 tests: `$MOTO_SERVER`, else `.venv/bin/moto_server`,
 *   created here with `python3 -m venv` and pip when missing (pinned version);
 * - Debian packages the suite drives for real — `systemd-analyze` (unit-file
 *   checks), `chromium` (dashboard), `prometheus` (health checks), PostgreSQL
 *   (fleet): installed with apt-get when missing and this runs as root.
 *
 * What cannot be provisioned fails with the exact command that fixes it.
 * Idempotent: a second run finds everything and does nothing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MOTO = 'moto[server]==5.2.5';

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const problems = [];
const say = (msg) => process.stderr.write(`test prerequisites: ${msg}\n`);

function run(cmd, args, opts = {}) {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], cwd: ROOT, ...opts });
}

if (!has('git')) problems.push('git is not on the PATH: install it (Debian: apt-get install git)');

const motoBin = process.env.MOTO_SERVER || join(ROOT, '.venv', 'bin', 'moto_server');
if (!existsSync(motoBin)) {
  if (process.env.MOTO_SERVER) {
    problems.push(`MOTO_SERVER=${process.env.MOTO_SERVER} does not exist: fix the path or unset it`);
  } else if (!has('python3')) {
    problems.push('python3 is missing (the EC2 tests run moto_server): install Python 3 with venv (Debian: apt-get install python3 python3-venv)');
  } else {
    say(`creating .venv with ${MOTO} for the EC2 tests (once)`);
    try {
      run('python3', ['-m', 'venv', '.venv']);
      run(join(ROOT, '.venv', 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', MOTO]);
    } catch (e) {
      problems.push(
        `could not create .venv with moto (${e.message.split('\n')[0]}): run "python3 -m venv .venv && .venv/bin/pip install '${MOTO}'" (Debian needs python3-venv)`,
      );
    }
  }
}

/** A PostgreSQL server binary: on the PATH or in Debian's versioned directory. */
function hasPostgres() {
  if (has('initdb') && has('pg_ctl')) return true;
  return spawnSync('sh', ['-c', 'ls /usr/lib/postgresql/*/bin/initdb'], { stdio: 'ignore' }).status === 0;
}

/** Debian packages the suite drives for real, each checked by the command it provides. */
const PACKAGES = [
  { pkg: 'systemd', what: 'systemd-analyze for the unit-file checks', present: () => has('systemd-analyze') },
  { pkg: 'chromium', what: 'chromium for the dashboard tests', present: () => has('chromium') },
  { pkg: 'prometheus', what: 'prometheus for the health-check tests', present: () => has('prometheus') },
  { pkg: 'postgresql', what: 'PostgreSQL for the fleet tests', present: hasPostgres },
];
const missing = PACKAGES.filter((p) => !p.present());
if (missing.length > 0) {
  const names = missing.map((p) => p.pkg);
  if (isRoot && has('apt-get')) {
    say(`installing ${missing.map((p) => p.what).join(', ')} (Debian packages ${names.join(' ')}; once)`);
    try {
      run('apt-get', ['update', '-qq']);
      run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], {
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } catch (e) {
      problems.push(`apt-get install ${names.join(' ')} failed (${e.message.split('\n')[0]}): install them by hand`);
    }
  } else {
    problems.push(
      `missing ${missing.map((p) => p.what).join(', ')}: run "sudo apt-get install ${names.join(' ')}" (Debian/Ubuntu), then npm test again`,
    );
  }
}

if (problems.length > 0) {
  for (const p of problems) say(p);
  process.exit(1);
}
