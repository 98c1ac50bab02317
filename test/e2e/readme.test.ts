/**
 * The README as a new user runs it: the quickstart command starts an agent,
 * and the documented curl commands work as written against it (only the
 * token and secret file paths are pointed at the quickstart's).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { killAllAgents, until } from '../helpers/agent-process.js';
import { spawn } from 'node:child_process';

const API = 'http://127.0.0.1:7420';

/** The ```sh blocks under a README heading. */
function shellBlocks(readme: string, heading: string): string[] {
  const section = readme.split(/^## /m).find((s) => s.startsWith(heading));
  assert.ok(section, `README section "${heading}"`);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

function bash(script: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) =>
    execFile('bash', ['-c', script], { timeout: 20_000 }, (e, out, err) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }),
    ),
  );
}

test('README: the first command starts the quickstart; every documented curl works as written', async (t) => {
  const readme = await readFile('README.md', 'utf8');
  const firstCommand = readme.split('```sh\n')[1]!.split('\n')[0]!;
  assert.match(
    firstCommand,
    /^npm ci && npm run quickstart\b/,
    'the README opens with the quickstart command',
  );
  const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts['quickstart']!, /steward\.js quickstart$/);
  const ci = await readFile('.ci/run', 'utf8');
  assert.match(ci, /^npm ci\b[^\n]*&& npm test$/m, '.ci/run runs the README test command');
  assert.doesNotMatch(
    ci.replace(/^#.*$/gm, ''),
    /\bapt-get\b|\bpip\b|\bvenv\b/,
    '.ci/run provisions nothing of its own: npm test does',
  );
  assert.match(
    pkg.scripts['test']!,
    /^node scripts\/test-prerequisites\.mjs && /,
    'npm test provisions first',
  );

  const dir = await mkdtemp(join(tmpdir(), 'steward-readme-'));
  const qs = join(dir, 'qs');
  // What `npm run quickstart` runs after its build step (npm test has built dist/ already).
  const child = spawn(process.execPath, ['bin/steward.js', 'quickstart', '--dir', qs], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  t.after(async () => {
    child.kill('SIGKILL');
    killAllAgents();
    await rm(dir, { recursive: true, force: true });
  });
  await until(
    async () =>
      (await fetch(`${API}/readyz`).then(
        (r) => r.status,
        () => 0,
      )) === 200,
    `the quickstart to be ready (${err})`,
  );
  // The first cycle of a new revision only soaks (observe); the next one (5 s later) creates the files.
  await until(
    async () => (await readFile(join(qs, 'managed/etc/motd'), 'utf8').catch(() => '')).startsWith('Welcome.'),
    'the motd',
  );

  // The installed command (the CLI bundle, dist/bundle/) serves the dashboard's files too.
  for (const path of ['/ui', '/ui/app.js', '/ui/app.css']) {
    const r = await fetch(`${API}${path}`);
    assert.equal(r.status, 200, `${path} from the quickstart`);
    assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  }

  const paths = (s: string) =>
    s
      .replaceAll('/var/lib/steward/admin-token', join(qs, 'state/admin-token'))
      .replaceAll('/etc/steward/webhook-secret', join(qs, 'webhook-secret'))
      .replaceAll('.quickstart/', `${qs}/`);
  const [admin, webhook] = shellBlocks(readme, 'Admin API').map(paths);
  assert.ok(admin && webhook);
  const lines = admin.split('\n').filter((l) => l.trim() !== '');
  const prelude = lines.filter((l) => !l.startsWith('curl')).join('\n');
  const curls = lines.filter((l) => l.startsWith('curl'));
  assert.ok(curls.length >= 11, 'a curl example for every route');
  for (const c of curls) {
    const withStatus = c.replace(/^curl -s/, "curl -s -o /dev/null -w '%{http_code}'");
    const r = await bash(`set -e\n${prelude}\n${withStatus}`);
    assert.equal(r.code, 0, `${c}: ${r.err}`);
    assert.match(r.out, /^2\d\d$/, `${c} answered ${r.out}`);
  }
  // The freeze example froze the agent, then the unfreeze example lifted it, and mode is enforce.
  const status = await bash(`${prelude}\ncurl -s -H "$AUTH" $API/v1/status`);
  const st = JSON.parse(status.out) as { mode: string; freeze: { frozen: boolean } };
  assert.equal(st.freeze.frozen, false);
  assert.equal(st.mode, 'enforce');

  const hook = webhook.replace(/^curl -s /m, "curl -s -o /dev/null -w '%{http_code}' ");
  const h = await bash(`API=${API}\n${hook}`);
  assert.equal(h.out, '202', `webhook example: ${h.err}`);

  // The quickstart block's steward lines (plan, validate and the admin commands), with the quickstart's paths.
  const [quick] = shellBlocks(readme, 'Watch it work').map(paths);
  const commands = quick!.split('\n').filter((x) => /^(npx steward|node bin\/steward\.js) /.test(x));
  assert.ok(commands.length >= 7, 'plan, validate, status, drift, freeze, unfreeze, audit');
  for (const l of commands) {
    const r = await bash(l.replace(/\s+#.*$/, ''));
    assert.ok(r.code === 0 || (r.code === 2 && l.includes(' plan ')), `${l}: exit ${r.code} ${r.err}`);
    if (/ status /.test(l)) assert.match(r.out, /^mode +enforce$/m, `${l}: a human table`);
    if (/ freeze /.test(l)) assert.match(r.out, /^frozen: /, l);
  }
  const after = JSON.parse((await bash(`${prelude}\ncurl -s -H "$AUTH" $API/v1/status`)).out) as typeof st;
  assert.equal(after.freeze.frozen, false, 'the freeze example, then the unfreeze example');

  child.kill('SIGTERM');
  assert.equal(await exited, 0, err);
});
