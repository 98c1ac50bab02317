/**
 * `steward plan` over 1,000 EC2 instances on moto_server against Cloud Custodian's
 * `custodian run --dryrun --cache-period 0` on the same moto, the same fleet (issue 12: target ≤ 0.8×).
 *
 * Both are fresh processes, alternated. steward's manifests select each instance by id and want a `Team: web`
 * tag every instance lacks (all drifted); Custodian's policy finds the same instances by a filter on that tag
 * (dry run: query and filter, no action). Custodian comes from PyPI into a bench-only venv,
 * `.cache/custodian-venv`, created here on first use (`python3 -m venv` + `pip install c7n`); without network
 * the row says so instead of a figure. Needs `npm run build` (plan runs from the build, as a user runs it).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ec2World, startMoto, useMotoCredentials } from '../test/helpers/moto.js';
import { median } from './harness.js';
import type { Benchmark } from './types.js';

const NAME = 'ec2-custodian';
const N = 1_000;
const RUNS = 5;
const ROOT = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const VENV = join(ROOT, '.cache', 'custodian-venv');
const CUSTODIAN = join(VENV, 'bin', 'custodian');

/** The venv with c7n, made on first use; an error says why it could not be. */
function custodian(progress: (m: string) => void): string {
  if (existsSync(CUSTODIAN)) return CUSTODIAN;
  progress(`${NAME}: installing c7n from PyPI into ${VENV}`);
  execFileSync('python3', ['-m', 'venv', VENV], { stdio: 'inherit' });
  execFileSync(join(VENV, 'bin', 'pip'), ['install', '--quiet', 'c7n'], { stdio: 'inherit' });
  return CUSTODIAN;
}

const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 'b',
  GIT_AUTHOR_EMAIL: 'b@x',
  GIT_COMMITTER_NAME: 'b',
  GIT_COMMITTER_EMAIL: 'b@x',
};

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, ok: number[]): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 1 << 28 });
  const ms = performance.now() - t0;
  if (!ok.includes(r.status ?? -1))
    throw new Error(`${NAME}: ${cmd} ${args[0]} exited ${r.status}: ${r.stderr.slice(-600)}`);
  return ms;
}

export const ec2Custodian: Benchmark = {
  name: NAME,
  description: `steward plan over ${N} EC2 instances on moto vs custodian run --dryrun --cache-period 0`,
  async run(ctx) {
    let bin: string;
    try {
      bin = custodian(ctx.progress);
    } catch (e) {
      throw new Error(`${NAME}: Cloud Custodian could not be installed from PyPI: ${(e as Error).message}`);
    }
    useMotoCredentials();
    const moto = await startMoto();
    const dir = mkdtempSync(join(tmpdir(), 'steward-bench-c7n-'));
    try {
      const world = await ec2World(moto);
      const ids = await world.run(N, { tags: { Env: 'prod' } });
      ctx.progress(`${NAME}: ${N} instances launched in moto`);
      const repo = join(dir, 'desired');
      mkdirSync(join(repo, 'fleet'), { recursive: true });
      for (let p = 0; p < N / 100; p++)
        writeFileSync(
          join(repo, 'fleet', `part${p}.yaml`),
          ids
            .slice(p * 100, p * 100 + 100)
            .map(
              (id, j) =>
                `apiVersion: steward/v1\nkind: Ec2Instance\nmetadata: { name: web-${p * 100 + j} }\nspec:\n  selector: { instanceId: ${id} }\n  tags: { Env: prod, Team: web }\n`,
            )
            .join('---\n'),
        );
      for (const args of [
        ['init', '-q', '-b', 'main'],
        ['add', '.'],
        ['commit', '-q', '-m', 'fleet'],
      ])
        execFileSync('git', args, { cwd: repo, env: gitEnv, stdio: 'ignore' });
      const config = join(dir, 'steward.yaml');
      writeFileSync(
        config,
        [
          `source: { url: ${JSON.stringify(repo)}, path: fleet }`,
          `providers: { aws-ec2: { region: ${world.region}, endpoint: ${JSON.stringify(moto.url)} } }`,
          'state: { dir: state }',
          'log: { level: error }',
        ].join('\n'),
      );
      const policy = join(dir, 'policy.yml');
      writeFileSync(
        policy,
        [
          'policies:',
          '  - name: team-tag',
          '    resource: ec2',
          '    filters:',
          '      - "tag:Env": prod',
          '      - "tag:Team": absent',
        ].join('\n'),
      );
      const env = {
        ...process.env,
        AWS_ENDPOINT_URL: moto.url,
        AWS_DEFAULT_REGION: world.region,
        AWS_REGION: world.region,
      };
      const plan = [join(ROOT, 'bin', 'steward.js'), 'plan', '-c', config];
      const c7n = [
        'run',
        '--dryrun',
        '--cache-period',
        '0',
        '-s',
        join(dir, 'out'),
        '-r',
        world.region,
        policy,
      ];
      // Sanity: steward sees N drifted; Custodian's dry run finds N resources.
      const probe = spawnSync(process.execPath, [...plan, '--json'], {
        encoding: 'utf8',
        env,
        maxBuffer: 1 << 28,
      });
      const seen = JSON.parse(probe.stdout || '{}') as { drifted?: number };
      if (probe.status !== 2 || seen.drifted !== N)
        throw new Error(
          `${NAME}: plan saw ${seen.drifted} drifted (exit ${probe.status}): ${probe.stderr.slice(-400)}`,
        );
      timed(bin, c7n, env, [0]);
      const found = spawnSync('python3', [
        '-c',
        `import json;print(len(json.load(open(${JSON.stringify(join(dir, 'out', 'team-tag', 'resources.json'))}))))`,
      ]);
      if (Number(found.stdout.toString().trim()) !== N)
        throw new Error(`${NAME}: custodian found ${found.stdout.toString().trim()} of ${N}`);
      const mine: number[] = [];
      const theirs: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        ctx.progress(`${NAME}: run ${i + 1}/${RUNS}`);
        mine.push(timed(process.execPath, plan, env, [2]));
        theirs.push(timed(bin, c7n, env, [0]));
      }
      const ratio = median(mine) / median(theirs);
      const base = { benchmark: NAME, n: N, runs: RUNS, rate: null, peakRssMiB: null } as const;
      const stats = (xs: number[]) => ({
        medianMs: median(xs),
        minMs: Math.min(...xs),
        maxMs: Math.max(...xs),
      });
      return [
        { ...base, case: 'custodian run --dryrun', ...stats(theirs), target: null },
        {
          ...base,
          case: 'steward plan',
          ...stats(mine),
          figure: `${ratio.toFixed(2)} × custodian`,
          target: { value: ratio, max: 0.8, label: '≤ 0.8 × custodian' },
          note: 'both on the same moto_server and fleet (1 DescribeInstances page of 1,000); each a fresh process',
        },
      ];
    } finally {
      await moto.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
