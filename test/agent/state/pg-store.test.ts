/**
 * The PostgreSQL state store against a real server: what is shared, what is
 * per agent, and the safety rules (no lost freeze, write-ahead under the lock).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isStewardError } from '../../../core/errors.js';
import { createPgPool, PgStateStore } from '../../../agent/state/pg-store.js';
import type { AuditRecord, PersistedState, WriteAheadRequest } from '../../../agent/state/types.js';
import { type PgServer, startPostgres } from '../../helpers/postgres.js';

let server: PgServer;
let n = 0;
const open: PgStateStore[] = [];

before(async () => {
  server = await startPostgres();
});
after(async () => {
  for (const s of open) await s.close().catch(() => undefined);
  await server.destroy();
});

/** A fresh database per test, so tests do not see each other's rows. */
async function database(): Promise<string> {
  const name = `t${++n}`;
  await server.createDatabase(name);
  return server.urlFor(name);
}

function store(url: string, agentId: string): PgStateStore {
  const pool = createPgPool({ url, password: null, poolSize: 2, connectTimeoutMs: 2_000 }, agentId);
  const s = new PgStateStore({ pool, agentId });
  open.push(s);
  return s;
}

const rec = (attempts: number) => ({ attempts, cyclesActedDrifted: 0, stuck: false });
/** Agents a and b on a fresh database, both loaded. */
async function loadedPair(): Promise<{ url: string; a: PgStateStore; b: PgStateStore }> {
  const url = await database();
  const a = store(url, 'a');
  const b = store(url, 'b');
  await a.load();
  await b.load();
  return { url, a, b };
}

const FREEZE = { reason: 'incident 42', by: 'admin-api', since: 1_000 };
const RATE = { actionsPerMinute: 60, burst: 3 };

function intent(name: string): AuditRecord {
  return {
    at: new Date(0).toISOString(),
    revision: 'abc',
    kind: 'File',
    name,
    id: null,
    patch: [],
    outcome: 'started',
    action: `act-${name}`,
    durationMs: 0,
  };
}

function aheadOf(names: string[], now = 10_000): WriteAheadRequest {
  return {
    resources: Object.fromEntries(names.map((k) => [`File/${k}`, { ...rec(1), nextAttemptAt: now + 1 }])),
    keys: names.map((k) => `File/${k}`),
    intents: names.map(intent),
    initialMode: 'enforce',
    rateLimit: RATE,
    now,
  };
}

const control = async (url: string) =>
  (await query(url, 'SELECT freeze_json AS freeze, mode, bucket FROM fleet_control'))[0]!;

async function query(url: string, sql: string): Promise<Record<string, unknown>[]> {
  const s = store(url, 'reader');
  try {
    return (await s.pool.query(sql)).rows;
  } finally {
    await s.close();
  }
}

describe('PgStateStore: shared fields', () => {
  it('shares a freeze: one agent freezes, the other reads it at its next refresh', async () => {
    const url = await database();
    const a = store(url, 'a');
    const b = store(url, 'b');
    const sa = await a.load();
    await b.save({ ...(await b.load()), freeze: FREEZE });
    assert.equal(sa.freeze, null);
    assert.deepEqual((await a.refresh(sa)).freeze, FREEZE);
  });

  it("a stale save does not unfreeze: A's cycle read before B froze, A's save keeps the freeze", async () => {
    const url = await database();
    const a = store(url, 'a');
    const b = store(url, 'b');
    const seen = await a.refresh(await a.load()); // A's cycle starts: not frozen
    await b.save({ ...(await b.load()), freeze: FREEZE }); // B freezes meanwhile
    const aEnd: PersistedState = {
      ...seen,
      soak: { sha: 'abc', cyclesObserved: 1 },
      resources: { 'File/x': rec(0) },
    };
    await a.save(aEnd); // A's end-of-cycle save, with its stale "not frozen"
    assert.deepEqual((await control(url))['freeze'], FREEZE);
    // What A did change is written.
    const rows = await query(url, "SELECT scope, key FROM resources WHERE key = 'File/x'");
    assert.deepEqual(rows, [{ scope: 'a', key: 'File/x' }]);
  });

  it('an unfreeze based on a freeze that was replaced meanwhile is refused (STATE_CONFLICT), the new freeze stays', async () => {
    const url = await database();
    const a = store(url, 'a');
    const b = store(url, 'b');
    await b.save({ ...(await b.load()), freeze: FREEZE });
    const seen = await a.refresh(await a.load());
    assert.deepEqual(seen.freeze, FREEZE);
    const bs = await b.refresh(await b.load());
    await b.save({ ...bs, freeze: null });
    const again = { reason: 'second incident', by: 'admin-api', since: 2_000 };
    await b.save({ ...bs, freeze: again });
    await assert.rejects(a.save({ ...seen, freeze: null }), (e) => isStewardError(e, 'STATE_CONFLICT'));
    assert.deepEqual((await control(url))['freeze'], again);
  });

  it('writes a freeze that memory holds from while the database was down at the next refresh', async () => {
    const url = await database();
    const a = store(url, 'a');
    const s = await a.load();
    await server.stop();
    try {
      await assert.rejects(a.save({ ...s, freeze: FREEZE }));
    } finally {
      await server.start();
    }
    const fresh = await a.refresh({ ...s, freeze: FREEZE });
    assert.deepEqual(fresh.freeze, FREEZE);
    assert.deepEqual((await control(url))['freeze'], FREEZE);
  });

  it('a save never replaces a freeze set meanwhile with a weaker one (no end beats any end, the later end wins)', async () => {
    const { url, a, b } = await loadedPair();
    const sa = await a.load();
    const halt = { reason: 'rollout_halted: …', by: 'steward (rollout halted)', since: 2_000, until: null };
    await b.save({ ...(await b.load()), freeze: halt }); // b halts; a has not read it
    await a.save({ ...sa, freeze: { ...FREEZE, until: Date.now() + 60_000 } }); // a's operator: freeze for 1 min
    assert.deepEqual((await control(url)).freeze, halt, 'the halt stays');
    assert.deepEqual((await a.refresh(sa)).freeze, halt, 'and a adopts it at its refresh');

    const { url: u2, a: c, b: d } = await loadedPair();
    const sc = await c.load();
    const sd = await d.load();
    const end = (ms: number) => ({ ...FREEZE, until: ms });
    const mine = { ...sc, freeze: end(5_000_000_000_000) };
    await c.save(mine);
    await d.save({ ...sd, freeze: end(4_000_000_000_000) }); // sooner than the one in force: kept
    assert.deepEqual((await control(u2)).freeze, end(5_000_000_000_000));
    await d.save({ ...sd, freeze: end(6_000_000_000_000) }); // later: replaces it
    assert.deepEqual((await control(u2)).freeze, end(6_000_000_000_000));
    const seen = await c.refresh(mine);
    assert.deepEqual(seen.freeze, end(6_000_000_000_000));
    await c.save({ ...seen, freeze: end(5_500_000_000_000) }); // the one it saw: its own change, written
    assert.deepEqual((await control(u2)).freeze, end(5_500_000_000_000));
  });

  it("peeks the fleet's freeze for the status, keeping a freeze only this agent's memory holds", async () => {
    const { a, b } = await loadedPair();
    const sa = await a.load();
    await b.save({ ...(await b.load()), freeze: FREEZE });
    assert.deepEqual(
      (await a.peekShared(sa)).freeze,
      FREEZE,
      "another agent's freeze, before a's next cycle",
    );
    const sa2 = await a.refresh(sa);
    await b.save({ ...(await b.refresh(await b.load())), freeze: null }); // b unfreezes
    assert.equal((await a.peekShared(sa2)).freeze, null, 'lifted elsewhere: a no longer shows it');
    const mine = { ...sa2, freeze: { ...FREEZE, reason: 'taken while the database was down' } };
    assert.deepEqual((await a.peekShared(mine)).freeze, mine.freeze, 'not written yet: still shown');
    assert.equal((await a.peekShared({ ...sa2, mode: 'observe' })).mode, 'observe');
  });

  it("ends a freeze by the database's clock, not the asking agent's", async () => {
    const { url, a, b } = await loadedPair();
    const [{ ms }] = (await query(url, 'SELECT (extract(epoch FROM now()) * 1000)::float8 AS ms')) as [
      { ms: number },
    ];
    const later = { ...FREEZE, until: ms + 3_600_000 }; // ends in an hour by the database's clock
    await b.save({ ...(await b.load()), freeze: later });
    assert.equal(await a.endFreeze(later), false, 'a clock running an hour ahead does not end it');
    assert.deepEqual((await control(url)).freeze, later);
    const past = { ...FREEZE, until: ms - 1 };
    await b.save({ ...(await b.refresh(await b.load())), freeze: past });
    assert.equal(await a.endFreeze(later), false, 'not the freeze in force any more: nothing lifted');
    assert.deepEqual((await control(url)).freeze, past);
    assert.equal(await a.endFreeze(past), true);
    assert.equal((await control(url)).freeze, null);
    assert.equal(await a.endFreeze({ ...FREEZE, until: null }), false, 'a freeze without an end never ends');
  });

  it('keeps approvals per agent: one agent spending its binding leaves the others theirs', async () => {
    const url = await database();
    const a = store(url, 'a');
    const b = store(url, 'b');
    const sa = await a.load();
    const approval = { sha: 'abc', by: 'admin-api', at: 5, keys: ['File/x'] };
    await a.save({ ...sa, approvals: [approval] });
    const sb = await b.refresh(await b.load());
    assert.deepEqual(sb.approvals, [{ ...approval, keys: null }]); // bound by B at its own first cycle
    await a.save({ ...sa, approvals: [] }); // A's drift converged: spent for A
    assert.deepEqual((await a.refresh(sa)).approvals, []);
    assert.deepEqual((await b.refresh(sb)).approvals, [{ ...approval, keys: null }]);
  });
});

describe('PgStateStore: approvals across revisions', () => {
  it('an agent still on the old revision does not spend an approval of the new one it has not seen', async () => {
    const { a, b } = await loadedPair();
    const approval = { sha: 'new', by: 'admin-api', at: 5, keys: ['File/x'] };
    await a.save({ ...(await a.refresh(await a.load())), approvals: [approval] });
    const onOld = await b.refresh(await b.load(), 'old');
    assert.deepEqual(onOld.approvals, [], 'not shown to a cycle on another revision');
    await b.save({ ...onOld, approvals: [] }); // the cycle's save, with nothing spent
    const onNew = await b.refresh(onOld, 'new');
    assert.deepEqual(onNew.approvals, [{ ...approval, keys: null }], 'still there when B reaches it');
  });
});

describe('PgStateStore: the write-ahead', () => {
  it('acts on nothing once the fleet is frozen, even when the cycle read it unfrozen', async () => {
    const url = await database();
    const a = store(url, 'a');
    const b = store(url, 'b');
    await a.refresh(await a.load());
    await b.save({ ...(await b.load()), freeze: FREEZE });
    const r = await a.writeAhead(aheadOf(['x', 'y']));
    assert.deepEqual(r, { kind: 'blocked', reason: 'frozen', freeze: FREEZE, mode: null });
    assert.deepEqual(await query(url, 'SELECT * FROM audit'), []);
    assert.deepEqual(await query(url, 'SELECT * FROM resources'), []);
    assert.equal((await control(url))['bucket'], null);
  });

  it('acts on nothing in observe mode (set by another agent, or the initial mode)', async () => {
    const url = await database();
    const a = store(url, 'a');
    const b = store(url, 'b');
    await a.load();
    await b.save({ ...(await b.load()), mode: 'observe' });
    assert.equal((await a.writeAhead(aheadOf(['x']))).kind, 'blocked');
    const c = store(await database(), 'c');
    await c.load();
    assert.deepEqual(await c.writeAhead({ ...aheadOf(['x']), initialMode: 'observe' }), {
      kind: 'blocked',
      reason: 'observe',
      freeze: null,
      mode: null,
    });
  });

  it('shares the rate-limit bucket: the second agent gets only the tokens left, and only those are written', async () => {
    const { url, a, b } = await loadedPair();
    assert.deepEqual(await a.writeAhead(aheadOf(['x', 'y'])), { kind: 'written', granted: 2 });
    assert.deepEqual(await b.writeAhead(aheadOf(['p', 'q'])), { kind: 'written', granted: 1 });
    const audit = await query(url, "SELECT agent_id, record->>'name' AS name FROM audit ORDER BY seq");
    assert.deepEqual(audit, [
      { agent_id: 'a', name: 'x' },
      { agent_id: 'a', name: 'y' },
      { agent_id: 'b', name: 'p' },
    ]);
    const res = await query(url, 'SELECT scope, key FROM resources ORDER BY scope, key');
    assert.deepEqual(res, [
      { scope: 'a', key: 'File/x' },
      { scope: 'a', key: 'File/y' },
      { scope: 'b', key: 'File/p' },
    ]);
  });

  it('reads the audit newest first, with a limit, naming the agent', async () => {
    const { a, b } = await loadedPair();
    await a.appendAudit([intent('one'), intent('two')]);
    await b.appendAudit([intent('three')]);
    const read = await a.readAudit(2);
    assert.deepEqual(
      read.records.map((r) => [r.agent, r.name]),
      [
        ['b', 'three'],
        ['a', 'two'],
      ],
    );
    assert.equal((await a.readAudit(0)).records.length, 3);
  });

  it("keeps resource records per agent: one agent's records are not another's", async () => {
    const url = await database();
    const a = store(url, 'a');
    const b = store(url, 'b');
    const sa = await a.load();
    await a.save({ ...sa, resources: { 'File/x': rec(2) } });
    assert.deepEqual((await b.load()).resources, {});
    const again = store(url, 'a');
    assert.deepEqual((await again.load()).resources, { 'File/x': rec(2) });
    await a.save({ ...sa, resources: {} }); // released
    assert.deepEqual((await store(url, 'a').load()).resources, {});
  });
});
