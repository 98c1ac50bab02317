/**
 * An agent wired from a real config file in a temp directory, driven one
 * cycle at a time (no timers), with an injectable clock. The file provider
 * works on a real directory; the source is a real Git repository.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from '../../agent/agent.js';
import { buildAgent } from '../../agent/build.js';
import { type Config, loadConfig } from '../../agent/config.js';
import type { AgentEvent } from '../../agent/events.js';
import { type Logger, silentLogger } from '../../agent/log.js';
import type { CycleReport } from '../../agent/reconciler.js';
import type { EngineKind } from '../../agent/source/engine.js';
import type { PollOutcome } from '../../agent/source/source.js';
import type { StateStore } from '../../agent/state/types.js';
import { seededRandom } from '../../policies/backoff.js';
import type { Provider } from '../../providers/types.js';
import { createTestRepo, type TestRepo } from './git-repo.js';

export interface Harness {
  dir: string;
  /** providers.file.root */
  root: string;
  stateDir: string;
  configPath: string;
  config: Config;
  agent: Agent;
  events: AgentEvent[];
  clock: { now: number };
  poll(): Promise<PollOutcome>;
  /** Polls the source, then runs exactly one cycle and returns its report. */
  cycle(): Promise<CycleReport>;
  /** A new agent on the same config and state dir (a restart). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** source.url: an http(s) URL or a local repository path. */
  sourceUrl: string;
  /** Extra YAML appended to the generated config (e.g. guardrails overrides). Must not repeat generated keys. */
  guardrails?: string;
  mode?: 'observe' | 'enforce';
  sourcePath?: string;
  sourceAuth?: { username: string; password: string };
  /** Extra YAML lines under `source:` (e.g. `verify: { ... }`). */
  sourceYaml?: string;
  extra?: string;
  /** Extra entries under `providers:` besides `file` (e.g. `aws-ec2: { region: us-east-1, endpoint: … }`). */
  providersYaml?: string;
  /**
   * Builds the providers instead of `buildProviders(config)` — to hold on to a
   * provider (count its API calls, inject faults). Called again on restart.
   */
  providers?: (config: Config) => ReadonlyMap<string, Provider>;
  /** Builds the state store instead of the default one (inject faults at the store boundary). Called again on restart. */
  store?: (config: Config) => StateStore;
  /** Runs before the first agent loads its state (e.g. mount a small volume at the state dir). */
  beforeInit?: (stateDir: string) => Promise<void>;
  /** The Git engine of the source (default: buildSource's). */
  sourceEngine?: EngineKind;
  /** The agent's logger (default: silent). */
  log?: Logger;
}

export async function makeHarness(opts: HarnessOptions): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'steward-h-'));
  const root = join(dir, 'managed');
  const stateDir = join(dir, 'state');
  await mkdir(root);
  const configPath = join(dir, 'steward.yaml');
  const lines = [
    'source:',
    `  url: ${JSON.stringify(opts.sourceUrl)}`,
    '  ref: main',
    `  path: ${opts.sourcePath ?? 'fleet'}`,
    '  interval: 1h',
    ...(opts.sourceYaml ?? '')
      .split('\n')
      .filter(Boolean)
      .map((l) => `  ${l}`),
  ];
  if (opts.sourceAuth) {
    await writeFile(join(dir, 'git-password'), `${opts.sourceAuth.password}\n`, { mode: 0o600 });
    lines.push(
      `  auth: { username: ${JSON.stringify(opts.sourceAuth.username)}, passwordFile: git-password }`,
    );
  }
  lines.push(
    'providers:',
    '  file: { root: managed }',
    ...(opts.providersYaml ?? '')
      .split('\n')
      .filter(Boolean)
      .map((l) => `  ${l}`),
    'reconcile:',
    '  interval: 1h',
    `  mode: ${opts.mode ?? 'enforce'}`,
    'guardrails:',
    ...(opts.guardrails ?? 'soak: { observeCycles: 0 }').split('\n').map((l) => `  ${l}`),
    'state: { dir: state }',
    'log: { level: error }',
  );
  if (opts.extra) lines.push(opts.extra);
  await writeFile(configPath, `${lines.join('\n')}\n`);
  const config = await loadConfig(configPath);
  const clock = { now: Date.UTC(2026, 0, 1) };
  const events: AgentEvent[] = [];
  const make = (): Agent => {
    const a = buildAgent(config, opts.log ?? silentLogger, {
      clock: () => clock.now,
      random: seededRandom(42),
      ...(opts.providers ? { providers: opts.providers(config) } : {}),
      ...(opts.store ? { store: opts.store(config) } : {}),
      ...(opts.sourceEngine ? { sourceEngine: opts.sourceEngine } : {}),
    });
    a.onEvent((e) => events.push(e));
    return a;
  };
  const h: Harness = {
    dir,
    root,
    stateDir,
    configPath,
    config,
    agent: make(),
    events,
    clock,
    poll: () => h.agent.poll(),
    async cycle() {
      await h.agent.poll();
      const before = h.agent.cycles;
      await h.agent.trigger('test');
      if (h.agent.cycles === before)
        throw new Error(`no cycle ran: ${h.agent.lastCycleError ?? 'no good revision'}`);
      return h.agent.lastCycle!;
    },
    async restart() {
      await h.agent.stop();
      h.agent = make();
      await h.agent.init();
    },
    async close() {
      await h.agent.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await opts.beforeInit?.(stateDir);
  await h.agent.init();
  return h;
}

/** A new local repository (read in place) and a harness on it, both removed after the test. */
export async function harnessOnNewRepo(
  t: { after: (fn: () => Promise<void>) => void },
  opts: Partial<HarnessOptions> = {},
): Promise<{ repo: TestRepo; h: Harness; base: string }> {
  const base = await mkdtemp(join(tmpdir(), 'steward-e2e-'));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  const h = await makeHarness({ sourceUrl: repo.workDir, ...opts });
  t.after(async () => {
    await h.close();
    await rm(base, { recursive: true, force: true });
  });
  return { repo, h, base };
}
