/**
 * Test helper: a few whole daemons (in process, driven cycle by cycle) on one
 * real PostgreSQL and one local repository holding one File, `app.conf`.
 * Every agent starts converged on the first revision.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../agent/config.js';
import { type Daemon, startDaemon } from '../../agent/daemon.js';
import type { FleetView } from '../../agent/fleet/types.js';
import type { HealthSource } from '../../agent/health/types.js';
import { silentLogger } from '../../agent/log.js';
import { agentDir, waitFor } from './fleet.js';
import { createTestRepo, type TestRepo } from './git-repo.js';
import { type PgServer, startPostgres } from './postgres.js';

export const appManifest = (content: string): string =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: app }\nspec: { path: app.conf, content: "${content}\\n" }\n`;

export interface DaemonFleet {
  pg: PgServer;
  repo: TestRepo;
  daemons: Map<string, Daemon>;
  /** The content of an agent's app.conf, trimmed. */
  content(id: string): string;
  /** Pushes a new revision whose app.conf says `content`. */
  push(content: string): Promise<void>;
  /** One cycle on every agent (in id order), then waits for each one's heartbeat of it; applied counts by id. */
  round(): Promise<Map<string, number>>;
  /** GET /v1/fleet through one agent's admin API. */
  fleetView(id: string): Promise<FleetView>;
  /** One request to an agent's admin API (with its token): the status and the JSON body. */
  api<T = unknown>(
    id: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: T }>;
  /** fleet_control's freeze reason (null: not frozen). */
  freezeReason(): Promise<string | null>;
  stop(): Promise<void>;
}

export async function startDaemonFleet(opts: {
  ids: readonly string[];
  /** Extra top-level YAML for every agent (e.g. `fleet: …`). */
  extra: string;
  health?: (root: string) => HealthSource;
}): Promise<DaemonFleet> {
  const base = await mkdtemp(join(tmpdir(), 'steward-dfleet-'));
  const pg = await startPostgres();
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  await repo.write('fleet/app.yaml', appManifest('v1'));
  await repo.commit('v1');
  const daemons = new Map<string, Daemon>();
  const roots = new Map<string, string>();
  for (const id of opts.ids) {
    const { root, config } = await agentDir(join(base, id), {
      repo: repo.workDir,
      pgUrl: pg.url,
      admin: '{ listen: "127.0.0.1:0" }',
      agent: `{ id: ${id} }`,
      extra: opts.extra,
    });
    await writeFile(join(root, 'app.conf'), 'v1\n'); // converged on v1 already
    roots.set(id, root);
    const d = await startDaemon(await loadConfig(config), {
      log: silentLogger,
      manual: true,
      ...(opts.health ? { health: opts.health(root) } : {}),
    });
    daemons.set(id, d);
  }
  const fleet: DaemonFleet = {
    pg,
    repo,
    daemons,
    content: (id) => readFileSync(join(roots.get(id)!, 'app.conf'), 'utf8').trim(),
    async push(content) {
      await repo.write('fleet/app.yaml', appManifest(content));
      await repo.commit(content);
    },
    async round() {
      const applied = new Map<string, number>();
      for (const id of opts.ids) {
        const a = daemons.get(id)!.agent;
        await a.poll();
        await a.trigger('test');
        applied.set(id, a.lastCycle!.applied);
      }
      await waitFor(async () => {
        const rows = await pg.query<{ id: string; last: Date | null }>(
          'SELECT id, last_cycle_at AS last FROM agents',
        );
        return opts.ids.every((id) => {
          const at = daemons.get(id)!.agent.lastCycle!.startedAt;
          return rows.some((r) => r.id === id && r.last?.toISOString() === at);
        });
      }, 'the heartbeats of the round');
      return applied;
    },
    async fleetView(id) {
      const res = await fleet.api<FleetView>(id, 'GET', '/v1/fleet');
      assert.equal(res.status, 200);
      return res.json;
    },
    async api<T>(id: string, method: string, path: string, body?: unknown) {
      const d = daemons.get(id)!;
      const token = readFileSync(join(base, id, 'state', 'admin-token'), 'utf8').trim();
      const res = await fetch(`${d.admin.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, json: (await res.json()) as T };
    },
    async freezeReason() {
      const rows = await pg.query<{ reason: string | null }>(
        "SELECT freeze_json->>'reason' AS reason FROM fleet_control",
      );
      return rows[0]!.reason;
    },
    async stop() {
      for (const d of daemons.values()) await d.stop();
      await pg.destroy();
      await rm(base, { recursive: true, force: true });
    },
  };
  return fleet;
}
