/**
 * bin/steward.js runs dist/bundle/cli.js (the build's bundle, faster to start) only while no dist/ module it
 * was made from is newer than it; otherwise dist/agent/cli.js, which behaves the same. A copy of the built
 * install whose bundle entry says so when it runs tells the two apart.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');

test('the bundle runs while it is as new as its inputs (plan and validate: the one-file one), and dist/agent/cli.js once one of them is newer', (t) => {
  const home = mkdtempSync(join(tmpdir(), 'steward-bin-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  for (const part of ['bin', 'dist', 'package.json'])
    cpSync(join(ROOT, part), join(home, part), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(home, 'node_modules'));
  writeFileSync(
    join(home, 'dist', 'bundle', 'cli.js'),
    "export async function main() { process.stdout.write('the bundle ran\\n'); return 0; }\n",
  );
  const inputs = JSON.parse(readFileSync(join(home, 'dist', 'bundle', 'inputs.json'), 'utf8')) as string[];
  const built = new Date();
  utimesSync(join(home, 'dist', 'bundle', 'inputs.json'), built, built);
  const past = new Date(built.getTime() - 60_000);
  for (const p of inputs) utimesSync(join(home, p), past, past);
  writeFileSync(
    join(home, 'dist', 'bundle', 'one-shot.cjs'),
    "exports.main = async (argv) => { process.stdout.write('the one-file bundle ran ' + argv[0] + '\\n'); return 0; };\n",
  );
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [join(home, 'bin', 'steward.js'), ...args], {
      encoding: 'utf8',
      env: { ...process.env, STEWARD_CODE_CACHE: 'off' },
    });
  const version = () => run('--version');

  assert.equal(version().stdout, 'the bundle ran\n', 'every input older than the bundle: the bundle runs');
  assert.equal(run('plan').stdout, 'the one-file bundle ran plan\n', 'plan: the one-file bundle');
  assert.equal(run('validate').stdout, 'the one-file bundle ran validate\n', 'validate: the one-file bundle');
  assert.equal(run('status').stdout, 'the bundle ran\n', 'any other command: the chunks');
  const later = new Date(built.getTime() + 60_000);
  utimesSync(join(home, inputs.at(-1)!), later, later);
  const r = version();
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /^steward \d+\.\d+\.\d+/,
    'one input newer (a tsc run since): dist/agent/cli.js runs',
  );
  const help = run('plan', '--help');
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^usage: steward plan/m, 'and for plan too, not the one-file bundle');
});
