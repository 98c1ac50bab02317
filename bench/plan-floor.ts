/**
 * `steward plan` over N File resources, side by side with a floor: the least a
 * plan can do in one Node process — `git archive` of the manifests folder,
 * `tar -x`, js-yaml `loadAll` of every file, `readFileSync` of every managed
 * file and a content compare (issue 12: target ≤ 1.5× the floor at 3,000).
 *
 * Both run as fresh processes on the same local repository and managed root,
 * alternated, each started the same way (`node <script>`); the CLI runs from
 * the build (`npm run build` first). The ratio is the median of plan over the
 * median of the floor. plan runs with its code cache (bin/steward.js), written by the warm-up run; a third
 * case, alternated with the other two, runs it without one (a plan just after an install or an upgrade).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from './harness.js';
import type { Benchmark, Row } from './types.js';

const N = 3_000;
const RUNS = 11;
const ROOT = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');

/** The floor, as a standalone script (written into the temp dir so it is timed as its own process). */
const FLOOR = `
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from ${JSON.stringify(`file://${join(ROOT, 'node_modules', 'js-yaml', 'dist', 'js-yaml.mjs')}`)};
const [repo, root] = process.argv.slice(2);
const out = mkdtempSync(join(tmpdir(), 'floor-'));
const tar = execFileSync('git', ['-C', repo, 'archive', 'HEAD', 'fleet'], { maxBuffer: 1 << 30 });
execFileSync('tar', ['-x', '-C', out], { input: tar });
let drifted = 0, managed = 0;
for (const f of readdirSync(join(out, 'fleet'))) {
  for (const doc of yaml.loadAll(readFileSync(join(out, 'fleet', f), 'utf8'))) {
    managed++;
    let seen = null;
    try { seen = readFileSync(join(root, doc.spec.path), 'utf8'); } catch {}
    if (seen !== doc.spec.content) drifted++;
  }
}
rmSync(out, { recursive: true, force: true });
process.stdout.write(JSON.stringify({ managed, drifted }));
`;

function git(cwd: string, args: string[]): void {
  execFileSync('git', args, {
    cwd,
    stdio: 'ignore',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'b',
      GIT_AUTHOR_EMAIL: 'b@x',
      GIT_COMMITTER_NAME: 'b',
      GIT_COMMITTER_EMAIL: 'b@x',
    },
  });
}

export function setup(n: number): { dir: string; repo: string; root: string; config: string; floor: string } {
  const dir = mkdtempSync(join(tmpdir(), 'steward-planfloor-'));
  const repo = join(dir, 'desired');
  const root = join(dir, 'managed');
  mkdirSync(join(repo, 'fleet'), { recursive: true });
  mkdirSync(join(root, 'f'), { recursive: true });
  for (let p = 0; p < Math.ceil(n / 100); p++) {
    const docs: string[] = [];
    for (let j = 0; j < 100 && p * 100 + j < n; j++) {
      const name = `r${String(p * 100 + j).padStart(5, '0')}`;
      const content = `${name}\nline two\n`;
      docs.push(
        `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: { path: f/${name}.conf, content: ${JSON.stringify(content)} }\n`,
      );
      // One in a hundred drifted, the rest converged: a plan with something to say.
      writeFileSync(join(root, 'f', `${name}.conf`), j === 0 ? 'hand edit\n' : content);
    }
    writeFileSync(join(repo, 'fleet', `part${p}.yaml`), docs.join('---\n'));
  }
  git(repo, ['init', '-q', '-b', 'main']);
  git(repo, ['add', '.']);
  git(repo, ['commit', '-q', '-m', `${n} files`]);
  const config = join(dir, 'steward.yaml');
  writeFileSync(
    config,
    [
      `source: { url: ${JSON.stringify(repo)}, path: fleet }`,
      'providers: { file: { root: managed } }',
      'state: { dir: state }',
      'log: { level: error }',
    ].join('\n'),
  );
  const floor = join(dir, 'floor.mjs');
  writeFileSync(floor, FLOOR);
  return { dir, repo, root, config, floor };
}

function timed(args: string[], okCodes: number[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 28, env });
  const ms = performance.now() - t0;
  if (!okCodes.includes(r.status ?? -1))
    throw new Error(`plan-floor: ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 500)}`);
  return ms;
}

export const planFloor: Benchmark = {
  name: 'plan-floor',
  description: `steward plan over ${N} Files vs a one-process floor script (git archive + tar + js-yaml + readFileSync)`,
  async run(ctx) {
    const f = setup(N);
    try {
      const plan = [join(ROOT, 'bin', 'steward.js'), 'plan', '-c', f.config];
      const floor = [f.floor, f.repo, f.root];
      const probe = spawnSync(process.execPath, floor, { encoding: 'utf8' });
      if (probe.status !== 0)
        throw new Error(`plan-floor: the floor script failed: ${probe.stderr.slice(0, 500)}`);
      const sanity = JSON.parse(probe.stdout) as { managed: number; drifted: number };
      if (sanity.managed !== N || sanity.drifted !== N / 100)
        throw new Error(`plan-floor: the floor saw ${JSON.stringify(sanity)}`);
      // plan's code cache (bin/steward.js) in a directory of the bench's own: the warm-up writes it, as a
      // user's first plan does; the "first start" case runs without one, as a plan right after an install.
      const cached = { ...process.env, STEWARD_CODE_CACHE: join(f.dir, 'code-cache') };
      const uncached = { ...process.env, STEWARD_CODE_CACHE: 'off' };
      timed(plan, [2], cached); // warm-up: the code cache and the page cache
      timed(floor, [0]);
      const p: number[] = [];
      const fl: number[] = [];
      const cold: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        ctx.progress(`plan-floor: run ${i + 1}/${RUNS}`);
        p.push(timed(plan, [2], cached));
        fl.push(timed(floor, [0]));
        cold.push(timed(plan, [2], uncached));
      }
      const ratio = median(p) / median(fl);
      const row = (c: string, xs: number[], extra: Partial<Row> = {}): Row => ({
        benchmark: 'plan-floor',
        case: c,
        n: N,
        runs: RUNS,
        medianMs: median(xs),
        minMs: Math.min(...xs),
        maxMs: Math.max(...xs),
        rate: null,
        peakRssMiB: null,
        target: null,
        ...extra,
      });
      return [
        row('floor', fl),
        row('plan', p, {
          figure: `${ratio.toFixed(2)} × floor`,
          target: { value: ratio, max: 1.5, label: '≤ 1.5 × floor' },
        }),
        row('plan, first start (no code cache)', cold, {
          figure: `${(median(cold) / median(fl)).toFixed(2)} × floor`,
        }),
      ];
    } finally {
      rmSync(f.dir, { recursive: true, force: true });
    }
  },
};
