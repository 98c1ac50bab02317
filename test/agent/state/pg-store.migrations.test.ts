/** Schema migrations against a real server: idempotent, safe when agents start at once, never downgraded. */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { isStewardError } from '../../../core/errors.js';
import { createPgPool, migrate, STATE_MIGRATIONS } from '../../../agent/state/pg-store.js';
import { type PgServer, startPostgres } from '../../helpers/postgres.js';

let server: PgServer;
before(async () => {
  server = await startPostgres();
});
after(() => server.destroy());

const pool = (url: string) =>
  createPgPool({ url, password: null, poolSize: 2, connectTimeoutMs: 2_000 }, 'migrator');

it('migrates once when eight agents start at once, and again finds nothing to do', async () => {
  await server.createDatabase('concurrent');
  const pools = Array.from({ length: 8 }, () => pool(server.urlFor('concurrent')));
  try {
    const applied = await Promise.all(pools.map((p) => migrate(p, 'state', STATE_MIGRATIONS)));
    assert.deepEqual(applied.flat(), [1], 'exactly one agent applied version 1');
    assert.deepEqual(await migrate(pools[0]!, 'state', STATE_MIGRATIONS), []);
    const v = await pools[0]!.query('SELECT component, version FROM schema_version');
    assert.deepEqual(v.rows, [{ component: 'state', version: 1 }]);
    const ctl = await pools[0]!.query('SELECT count(*)::int AS n FROM fleet_control');
    assert.equal(ctl.rows[0].n, 1);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

it('keeps components apart, and refuses a schema newer than it knows', async () => {
  await server.createDatabase('newer');
  const p = pool(server.urlFor('newer'));
  try {
    await migrate(p, 'state', STATE_MIGRATIONS);
    assert.deepEqual(await migrate(p, 'other', [{ version: 1, sql: 'CREATE TABLE other_t (x int)' }]), [1]);
    await p.query("UPDATE schema_version SET version = 7 WHERE component = 'state'");
    await assert.rejects(migrate(p, 'state', STATE_MIGRATIONS), (e) =>
      isStewardError(e, 'STATE_SCHEMA_NEWER'),
    );
  } finally {
    await p.end();
  }
});

it('applies nothing of a step that fails (one transaction)', async () => {
  await server.createDatabase('failing');
  const p = pool(server.urlFor('failing'));
  try {
    const steps = [
      { version: 1, sql: 'CREATE TABLE a_t (x int)' },
      { version: 2, sql: 'CREATE TABLE b_t (x nosuchtype)' },
    ];
    await assert.rejects(migrate(p, 'x', steps));
    const t = await p.query("SELECT to_regclass('a_t') AS a, to_regclass('schema_version') AS v");
    assert.deepEqual(t.rows, [{ a: null, v: null }]);
  } finally {
    await p.end();
  }
});
