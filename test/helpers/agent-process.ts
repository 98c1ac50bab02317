/** A real agent process (the CLI from source), for crash, shutdown and lock tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';

export interface AgentProcess {
  child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  stderr(): string;
}

const live = new Set<ChildProcess>();

export function startAgentProcess(args: string[]): AgentProcess {
  let err = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/cli-entry.ts', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  live.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      live.delete(child);
      resolve(code);
    }),
  );
  return { child, exited, stderr: () => err };
}

/** Kills every agent process still running (call from t.after, so a failed assertion leaves none behind). */
export function killAllAgents(): void {
  for (const c of live) c.kill('SIGKILL');
}

/** Polls `check` (bounded) until it returns true. */
export async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

export const countFiles = async (dir: string, suffix = '.conf'): Promise<number> =>
  (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(suffix)).length;

export interface BigFleet {
  base: string;
  managed: string;
  stateDir: string;
  config: string;
  /** The file name of resource i (`r0042`). */
  name(i: number): string;
}

/**
 * A local repository with `n` Files (`f/rNNNN.conf`, 100 per manifest file) and a
 * config that lets one cycle apply them all (no cap, no mass-drift halt, no soak):
 * a long cycle to interrupt.
 */
export async function writeBigFleet(
  base: string,
  n: number,
  mode: 'observe' | 'enforce',
  opts: { guardrails?: string[]; reconcileInterval?: string; rateLimit?: string } = {},
): Promise<BigFleet> {
  const { createTestRepo } = await import('./git-repo.js');
  const { mkdir, writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const name = (i: number) => `r${String(i).padStart(4, '0')}`;
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  for (let f = 0; f < Math.ceil(n / 100); f++) {
    const docs = Array.from({ length: Math.min(100, n - f * 100) }, (_, j) => {
      const r = name(f * 100 + j);
      return `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${r} }\nspec: { path: f/${r}.conf, content: "${r}\\n" }\n`;
    });
    await repo.write(`fleet/part${f}.yaml`, docs.join('---\n'));
  }
  await repo.commit(`${n} files`);
  const managed = join(base, 'managed');
  await mkdir(managed);
  const config = join(base, 'steward.yaml');
  await writeFile(
    config,
    [
      `source: { url: ${JSON.stringify(repo.workDir)}, path: fleet, interval: 1h }`,
      'providers: { file: { root: managed } }',
      `reconcile: { interval: ${opts.reconcileInterval ?? '1h'}, mode: ${mode} }`,
      'guardrails:',
      '  maxActionsPerCycle: 100000',
      '  massDrift: { maxDrifted: 100000, maxDriftedPercent: 100, minManaged: 5 }',
      `  rateLimit: ${opts.rateLimit ?? '{ actionsPerMinute: 100000, burst: 100000 }'}`,
      '  soak: { observeCycles: 0 }',
      ...(opts.guardrails ?? []).map((l) => `  ${l}`),
      'admin: { listen: "127.0.0.1:0" }',
      'state: { dir: state }',
      'log: { level: warn }',
    ].join('\n'),
  );
  return { base, managed, stateDir: join(base, 'state'), config, name };
}
