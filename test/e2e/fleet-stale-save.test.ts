/**
 * The stale-save attack on a shared freeze: agent A is mid-cycle (it read the
 * fleet unfrozen) when agent B freezes through its API. A must neither act
 * after the freeze's commit (its write-ahead re-reads the freeze under a lock)
 * nor write its old "not frozen" back at the end of the cycle (its save
 * writes only what it changed). Two real agents, real files, real PostgreSQL.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { createPgPool, PgStateStore } from '../../agent/state/pg-store.js';
import type { AuditRecord, WriteAheadRequest, WriteAheadResult } from '../../agent/state/types.js';
import { fileRepo, filesOf, tamper } from '../helpers/fleet.js';
import { type Harness, makeHarness } from '../helpers/harness.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';

const NAMES = ['a', 'b', 'c'];

/** A real PgStateStore with a hook before its write-ahead and before each outcome's audit line. */
class HookedStore extends PgStateStore {
  beforeWriteAhead: (() => Promise<void>) | null = null;
  beforeOutcome: (() => Promise<void>) | null = null;
  override async writeAhead(req: WriteAheadRequest): Promise<WriteAheadResult> {
    const hook = this.beforeWriteAhead;
    this.beforeWriteAhead = null;
    await hook?.();
    return super.writeAhead(req);
  }
  override async appendAudit(records: readonly AuditRecord[]): Promise<void> {
    const hook = this.beforeOutcome;
    if (records.some((r) => r.outcome !== 'started')) this.beforeOutcome = null;
    if (hook && records.some((r) => r.outcome !== 'started')) await hook();
    return super.appendAudit(records);
  }
}

let pgServer: PgServer;
let base: string;
let repoDir: string;
let db = 0;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'steward-stale-'));
  pgServer = await startPostgres();
  repoDir = await fileRepo(base, NAMES);
});
after(async () => {
  await pgServer?.destroy();
  await rm(base, { recursive: true, force: true });
});

interface Two {
  a: Harness;
  b: Harness;
  storeA: HookedStore;
  url: string;
}

/** Runs `fn` with agents A and B on a fresh database, both converged and verified; closes both after. */
async function withTwoAgents(fn: (t: Two) => Promise<void>): Promise<void> {
  const t = await twoAgents();
  try {
    await fn(t);
  } finally {
    await t.a.close();
    await t.b.close();
  }
}

async function twoAgents(): Promise<Two> {
  const name = `stale${++db}`;
  await pgServer.createDatabase(name);
  const url = pgServer.urlFor(name);
  let storeA: HookedStore | undefined;
  const make = (id: string) =>
    makeHarness({
      sourceUrl: repoDir,
      extra: `agent: { id: ${id} }`,
      store: (config) => {
        const pool = createPgPool({ url, password: null, poolSize: 2, connectTimeoutMs: 2_000 }, id);
        const s = new HookedStore({ pool, agentId: config.agent.id });
        if (id === 'a') storeA = s;
        return s;
      },
    });
  const a = await make('a');
  const b = await make('b');
  for (const h of [a, b]) {
    await h.cycle();
    await h.cycle(); // verify: a tamper after it is new drift
  }
  return { a, b, storeA: storeA!, url };
}

const frozenRow = async (url: string) => {
  const c = createPgPool({ url, password: null, poolSize: 1, connectTimeoutMs: 2_000 }, 'reader');
  try {
    return (
      await c.query<{ reason: string | null }>("SELECT freeze_json->>'reason' AS reason FROM fleet_control")
    ).rows[0]!.reason;
  } finally {
    await c.end();
  }
};

describe('a freeze through agent B while agent A is mid-cycle', () => {
  it('between A reading the fleet and A writing ahead: A acts on nothing', async () => {
    await withTwoAgents(async ({ a, b, storeA, url }) => {
      await tamper(a.root, NAMES);
      storeA.beforeWriteAhead = () => b.agent.freeze('B froze mid-cycle of A', 'admin-api');
      const r = await a.cycle();
      assert.equal(r.applied, 0);
      assert.deepEqual(r.held, { frozen: NAMES.length });
      assert.equal(r.frozen, true);
      assert.deepEqual(
        Object.values(await filesOf(a.root)),
        NAMES.map((n) => `${n} tampered\n`),
      );
      assert.equal(await frozenRow(url), 'B froze mid-cycle of A');
      const intents = (await a.agent.readAudit(0)).records.filter(
        (x) => x.agent === 'a' && x.outcome === 'started',
      );
      assert.equal(intents.length, NAMES.length, 'only the first convergence wrote intents');
    });
  });

  it("during A's actions (after its write-ahead): A's end-of-cycle save does not unfreeze, its next cycle holds", async () => {
    await withTwoAgents(async ({ a, b, storeA, url }) => {
      await tamper(a.root, NAMES);
      storeA.beforeOutcome = () => b.agent.freeze('B froze during A actions', 'admin-api');
      const r = await a.cycle();
      // The action in flight when the freeze committed finishes (as with a local freeze); A asks the fleet
      // after each outcome, so none of the rest it had written ahead starts.
      assert.equal(r.applied, 1, 'only the action in flight');
      assert.equal(
        Object.values(await filesOf(a.root)).filter((c) => c.endsWith('tampered\n')).length,
        NAMES.length - 1,
      );
      assert.equal(await frozenRow(url), 'B froze during A actions', "A's stale save lifted the freeze");
      await tamper(a.root, NAMES);
      const next = await a.cycle();
      assert.equal(next.applied, 0);
      assert.equal(next.frozen, true);
      assert.equal(await frozenRow(url), 'B froze during A actions');
    });
  });
});
