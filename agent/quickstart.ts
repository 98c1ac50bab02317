/**
 * `steward quickstart`: a local demo with no setup and no cloud account. It
 * creates (once) a desired-state Git repository from examples/quickstart,
 * a directory of managed files and a config, then runs the agent on them.
 */
import * as fs from 'node:fs';
import { cp, mkdir, readdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join, relative, resolve } from 'node:path';
import git from 'isomorphic-git';
import { runAgent } from './run.js';
import { loadConfig } from './config.js';
import { nodeCrypto } from '../core/builtins.js';

function examplesDir(): string {
  for (const rel of ['../examples/quickstart', '../../examples/quickstart']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (fs.existsSync(join(p, 'steward.yaml'))) return p;
  }
  throw new Error('examples/quickstart not found next to the steward installation');
}

async function listFiles(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p, base)));
    else out.push(relative(base, p));
  }
  return out;
}

/** Creates the demo's desired-state repository with one commit, unless it exists. */
async function ensureRepo(repoDir: string, fleetSrc: string): Promise<boolean> {
  if (fs.existsSync(join(repoDir, '.git'))) return false;
  await mkdir(repoDir, { recursive: true });
  await git.init({ fs, dir: repoDir, defaultBranch: 'main' });
  await cp(fleetSrc, join(repoDir, 'fleet'), { recursive: true });
  for (const f of await listFiles(join(repoDir, 'fleet')))
    await git.add({ fs, dir: repoDir, filepath: join('fleet', f) });
  await git.commit({
    fs,
    dir: repoDir,
    message: 'Initial desired state from examples/quickstart',
    author: { name: 'steward quickstart', email: 'quickstart@steward.invalid' },
  });
  return true;
}

export async function quickstart(dir: string, io: { err: (s: string) => void }): Promise<number> {
  const root = resolve(dir);
  const src = examplesDir();
  await mkdir(join(root, 'managed'), { recursive: true });
  const created = await ensureRepo(join(root, 'desired'), join(src, 'fleet'));
  const configPath = join(root, 'steward.yaml');
  if (!fs.existsSync(configPath)) await writeFile(configPath, fs.readFileSync(join(src, 'steward.yaml')));
  const hookSecret = join(root, 'webhook-secret');
  if (!fs.existsSync(hookSecret))
    await writeFile(hookSecret, `${nodeCrypto().randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
  const rel = relative(process.cwd(), root) || '.';
  io.err(
    [
      '',
      `steward quickstart ${created ? '(new)' : '(existing)'} in ${rel}/`,
      `  desired state: ${rel}/desired  (a Git repository; manifests under fleet/)`,
      `  managed files: ${rel}/managed`,
      `  config:        ${rel}/steward.yaml`,
      '',
      'Try, in another terminal:',
      `  echo "hand edit" >> ${rel}/managed/etc/motd     # reverted within ~5 s`,
      `  sed -i 's/workers = 4/workers = 8/' ${rel}/desired/fleet/app/app.yaml && git -C ${rel}/desired commit -am "more workers"`,
      `  npx steward plan -c ${rel}/steward.yaml     # what differs now (exit 2 = drift)`,
      `  npx steward status -c ${rel}/steward.yaml   # the running agent (also drift, freeze, audit: steward --help)`,
      'Stop with Ctrl-C.',
      '',
    ].join('\n'),
  );
  return runAgent(await loadConfig(configPath));
}
