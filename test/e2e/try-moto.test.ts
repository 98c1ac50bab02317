/**
 * examples/aws-ec2/try-moto.ts as documented (docs/providers/aws-ec2.md): its
 * build in dist/ seeds a real moto_server and writes a demo that `steward
 * plan` reads — on an install with production dependencies only, as after
 * `npm prune --omit=dev` (a copy of dist/, bin/ and examples/ next to a
 * node_modules that holds only the lock file's non-dev packages).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, realpath, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { type Moto, startMoto } from '../helpers/moto.js';

function node(args: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((done) =>
    execFile(process.execPath, args, { cwd, timeout: 60_000 }, (e, out, err) =>
      done({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out, err }),
    ),
  );
}

/** A tree like a pruned install: our built files copied, and links to the production packages only. */
async function prunedInstall(dir: string): Promise<void> {
  for (const d of ['dist', 'bin', 'examples']) await cp(d, join(dir, d), { recursive: true });
  await cp('package.json', join(dir, 'package.json'));
  const lock = JSON.parse(await readFile('package-lock.json', 'utf8')) as {
    packages: Record<string, { dev?: boolean }>;
  };
  const modules = await realpath('node_modules');
  for (const [key, info] of Object.entries(lock.packages)) {
    // Top-level packages only: nested ones live inside their (linked) parent.
    if (!key.startsWith('node_modules/') || key.slice(13).includes('node_modules/') || info.dev) continue;
    const name = key.slice(13);
    await mkdir(dirname(join(dir, 'node_modules', name)), { recursive: true });
    await symlink(join(modules, name), join(dir, 'node_modules', name), 'dir');
  }
}

test('try-moto (built) seeds moto and writes a demo that steward plan reads, with no dev dependency', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steward-try-moto-'));
  let moto: Moto | undefined;
  t.after(async () => {
    await moto?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  await prunedInstall(dir);
  // The pruned tree really lacks the dev dependencies (what `node --import tsx` needed).
  const tsx = await node(['--import', 'tsx', '-e', '0'], dir);
  assert.notEqual(tsx.code, 0, 'tsx is not installed in the pruned tree');

  moto = await startMoto();
  const demo = join(dir, 'demo');
  const seeded = await node(['dist/examples/aws-ec2/try-moto.js', moto.url, demo], dir);
  assert.equal(seeded.code, 0, seeded.err);
  assert.match(seeded.out, /^seeded moto at .*: vpc-\w+, security group sg-\w+, instances i-\w+, i-\w+$/m);
  assert.match(seeded.out, /npx steward plan -c .*demo\/steward\.yaml/);

  const plan = await node(['bin/steward.js', 'plan', '-c', join(demo, 'steward.yaml')], dir);
  assert.equal(plan.code, 2, `drift: ${plan.err}${plan.out}`);
  assert.match(plan.out, /SecurityGroup\/web-sg/);
});
