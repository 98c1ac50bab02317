/**
 * Test helper: a fleet of real `steward run` processes sharing one
 * PostgreSQL database and one local Git repository, each with its own file
 * root, state directory and admin port (loopback).
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AgentProcess, startAgentProcess } from './agent-process.js';
import { createTestRepo } from './git-repo.js';
import { freePort } from './postgres.js';

export interface FleetAgent {
  id: string;
  root: string;
  url: string;
  proc: AgentProcess;
  /** An admin API call with the agent's token. */
  req<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }>;
  /** Completed cycles, from /v1/status. */
  cycles(): Promise<number>;
}

export interface FleetOptions {
  n: number;
  pgUrl: string;
  /** A local repository path (read in place). */
  repo: string;
  /** Lines under `guardrails:`. */
  guardrails?: string[];
  /** Extra top-level YAML for every agent (e.g. `alerts: …`). */
  extra?: string;
  /** Extra top-level YAML for one agent (e.g. a `health:` check of its own service). */
  extraFor?: (id: string) => string;
}

export interface Fleet {
  dir: string;
  agents: FleetAgent[];
  stop(): Promise<void>;
}

/** Polls `check` every `everyMs` (a poll, not a fixed wait) until it holds; fails after `timeoutMs`. */
export async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
  everyMs = 50,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** One agent's steward.yaml: a local repository, a file root `managed`, the postgres backend, enforce, no soak. */
export function agentConfig(c: {
  repo: string;
  pgUrl: string;
  admin: string;
  agent: string;
  guardrails?: string[];
  extra?: string;
}): string {
  return [
    `source: { url: ${JSON.stringify(c.repo)}, path: fleet, interval: 1h }`,
    'providers: { file: { root: managed } }',
    'reconcile: { interval: 1h, mode: enforce }',
    'guardrails:',
    '  soak: { observeCycles: 0 }',
    ...(c.guardrails ?? []).map((l) => `  ${l}`),
    `admin: ${c.admin}`,
    'state:',
    '  dir: state',
    '  backend: postgres',
    `  postgres: { url: ${JSON.stringify(c.pgUrl)}, poolSize: 2, connectTimeout: 2s }`,
    `agent: ${c.agent}`,
    'log: { level: error }',
    c.extra ?? '',
  ].join('\n');
}

/** An agent's directory: `managed/` (its file root) and `steward.yaml`. */
export async function agentDir(
  dir: string,
  c: Parameters<typeof agentConfig>[0],
): Promise<{ root: string; config: string }> {
  const root = join(dir, 'managed');
  await mkdir(root, { recursive: true });
  const config = join(dir, 'steward.yaml');
  await writeFile(config, agentConfig(c));
  return { root, config };
}

/** What `fileRepo` puts in Git: `<name>.conf` holding `<name> desired`. */
export const desiredFiles = (names: readonly string[]): Record<string, string> =>
  Object.fromEntries(names.map((n) => [`${n}.conf`, `${n} desired\n`]));

/** A local repository (under `base`) with one File per name in `fleet/files.yaml`; returns its path. */
export async function fileRepo(base: string, names: readonly string[]): Promise<string> {
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  await repo.write(
    'fleet/files.yaml',
    names
      .map(
        (n) =>
          `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${n} }\nspec: { path: ${n}.conf, content: "${n} desired\\n" }\n`,
      )
      .join('---\n'),
  );
  await repo.commit(`${names.length} files`);
  return repo.workDir;
}

/** Writes `<name> tampered` into each file of `root`. */
export async function tamper(root: string, names: readonly string[]): Promise<void> {
  await Promise.all(names.map((n) => writeFile(join(root, `${n}.conf`), `${n} tampered\n`)));
}

export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const dir = await mkdtemp(join(tmpdir(), 'steward-fleet-'));
  const agents: FleetAgent[] = [];
  for (let i = 0; i < opts.n; i++) {
    const id = `agent-${String(i).padStart(2, '0')}`;
    const base = join(dir, id);
    const token = `token-for-${id}-0123456789abcdef`;
    await mkdir(base, { recursive: true });
    await writeFile(join(base, 'token'), `${token}\n`, { mode: 0o600 });
    const port = await freePort();
    const { root, config } = await agentDir(base, {
      repo: opts.repo,
      pgUrl: opts.pgUrl,
      admin: `{ listen: "127.0.0.1:${port}", tokenFile: token }`,
      agent: `{ id: ${id}, labels: { index: "${i}" } }`,
      guardrails: opts.guardrails ?? [],
      extra: [opts.extra ?? '', opts.extraFor?.(id) ?? ''].join('\n'),
    });
    const url = `http://127.0.0.1:${port}`;
    const req: FleetAgent['req'] = async <T>(method: string, path: string, body?: unknown) => {
      const res = await fetch(url + path, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, json: (text ? JSON.parse(text) : null) as T };
    };
    agents.push({
      id,
      root,
      url,
      proc: startAgentProcess(['run', '-c', config]),
      req,
      cycles: async () => (await req<{ cycles: number }>('GET', '/v1/status')).json.cycles,
    });
  }
  return {
    dir,
    agents,
    async stop() {
      for (const a of agents) a.proc.child.kill('SIGTERM');
      await Promise.all(agents.map((a) => a.proc.exited));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs one more cycle on each agent (POST /v1/reconcile) and waits until each has completed it. */
export async function cycleAll(agents: readonly FleetAgent[]): Promise<void> {
  const before = await Promise.all(agents.map((a) => a.cycles()));
  await Promise.all(agents.map((a) => a.req('POST', '/v1/reconcile')));
  await Promise.all(
    agents.map((a, i) => waitFor(async () => (await a.cycles()) > before[i]!, `a cycle of ${a.id}`)),
  );
}

/** The content of each managed file (`*.conf`) of an agent, by name. */
export async function filesOf(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of (await readdir(root)).filter((n) => n.endsWith('.conf')).sort())
    out[f] = await readFile(join(root, f), 'utf8');
  return out;
}
