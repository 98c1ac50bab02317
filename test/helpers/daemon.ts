/**
 * A whole daemon (agent + admin API on a real loopback socket) in a temp
 * directory, for end-to-end tests that talk HTTP to it.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../agent/config.js';
import { type Daemon, startDaemon } from '../../agent/daemon.js';
import { type Logger, silentLogger } from '../../agent/log.js';
import { createTestRepo, type TestRepo } from './git-repo.js';

export interface DaemonHarness {
  dir: string;
  root: string;
  stateDir: string;
  daemon: Daemon;
  url: string;
  token: string;
  webhookSecret: string;
  /** fetch against the admin API; `auth: false` sends no token, a string sends that one. */
  req(
    method: string,
    path: string,
    opts?: { body?: unknown; raw?: string; auth?: boolean | string; headers?: Record<string, string> },
  ): Promise<{ status: number; json: unknown; text: string; headers: Headers }>;
  stop(): Promise<void>;
}

export interface DaemonHarnessOptions {
  sourceUrl: string;
  guardrails?: string;
  mode?: 'observe' | 'enforce';
  sourceInterval?: string;
  reconcileInterval?: string;
  extra?: string;
  manual?: boolean;
  /** Extra entries under `providers:` besides `file`. */
  providersYaml?: string;
  /** The daemon's logger (default: silent). */
  log?: Logger;
  /** The push-webhook secret; null leaves `admin.webhookSecretFile` unset (the webhook is disabled). */
  webhookSecret?: string | null;
  /** Runs before the daemon starts, with the test directory (the state dir is `<dir>/state`). */
  beforeStart?: (dir: string) => Promise<void>;
}

export async function startDaemonHarness(opts: DaemonHarnessOptions): Promise<DaemonHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'steward-d-'));
  const root = join(dir, 'managed');
  await mkdir(root);
  const webhookSecret = opts.webhookSecret === undefined ? 'webhook-secret-for-tests' : opts.webhookSecret;
  if (webhookSecret !== null)
    await writeFile(join(dir, 'webhook-secret'), `${webhookSecret}\n`, { mode: 0o600 });
  const lines = [
    `source: { url: ${JSON.stringify(opts.sourceUrl)}, ref: main, path: fleet, interval: ${opts.sourceInterval ?? '1h'} }`,
    'providers:',
    '  file: { root: managed }',
    ...(opts.providersYaml ? [`  ${opts.providersYaml}`] : []),
    `reconcile: { interval: ${opts.reconcileInterval ?? '1h'}, mode: ${opts.mode ?? 'enforce'} }`,
    'guardrails:',
    ...(opts.guardrails ?? 'soak: { observeCycles: 0 }').split('\n').map((l) => `  ${l}`),
    `admin: { listen: "127.0.0.1:0"${webhookSecret === null ? '' : ', webhookSecretFile: webhook-secret'} }`,
    'state: { dir: state }',
    'log: { level: error }',
  ];
  if (opts.extra) lines.push(opts.extra);
  const configPath = join(dir, 'steward.yaml');
  await writeFile(configPath, `${lines.join('\n')}\n`);
  const config = await loadConfig(configPath);
  await opts.beforeStart?.(dir);
  const daemon = await startDaemon(config, { log: opts.log ?? silentLogger, manual: opts.manual ?? false });
  const token = (await readFile(config.admin.tokenFile, 'utf8')).trim();
  const url = daemon.admin.url;
  return {
    dir,
    root,
    stateDir: config.state.dir,
    daemon,
    url,
    token,
    webhookSecret: webhookSecret ?? '',
    async req(method, path, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      const auth = o.auth ?? true;
      if (auth !== false) headers['authorization'] = `Bearer ${typeof auth === 'string' ? auth : token}`;
      let body: string | undefined;
      if (o.raw !== undefined) body = o.raw;
      else if (o.body !== undefined) body = JSON.stringify(o.body);
      if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
      const res = await fetch(`${url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {}
      return { status: res.status, json, text, headers: res.headers };
    },
    async stop() {
      await daemon.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh repo (in a new temp dir `base`) holding one File manifest, `fleet/a.yaml` → `a.conf`. */
export async function createOneFileRepo(): Promise<{ base: string; repo: TestRepo }> {
  const base = await mkdtemp(join(tmpdir(), 'steward-one-'));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  await repo.write(
    'fleet/a.yaml',
    'apiVersion: steward/v1\nkind: File\nmetadata: { name: a }\nspec: { path: a.conf, content: "a\\n" }\n',
  );
  await repo.commit('v1');
  return { base, repo };
}

/**
 * A manual daemon on a fresh repo holding one File manifest (`a.conf`), stopped and
 * removed after the test (`beforeStop` runs first, e.g. to drop client sockets).
 */
export async function startOneFileDaemon(
  t: { after: (fn: () => Promise<void>) => void },
  opts: Partial<DaemonHarnessOptions> & { beforeStop?: () => void } = {},
): Promise<DaemonHarness> {
  const { base, repo } = await createOneFileRepo();
  const { beforeStop, ...rest } = opts;
  const d = await startDaemonHarness({ manual: true, ...rest, sourceUrl: repo.workDir });
  t.after(async () => {
    beforeStop?.();
    await d.stop();
    await rm(base, { recursive: true, force: true });
  });
  return d;
}
