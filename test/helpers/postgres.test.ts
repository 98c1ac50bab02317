/** The PostgreSQL helper itself: a real server that stops, crashes and comes back with its data, leaving nothing running. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, test } from 'node:test';
import pg from 'pg';
import { type PgServer, startPostgres } from './postgres.js';
import { childrenOf, running } from './process-group.js';

const servers: PgServer[] = [];
after(async () => {
  for (const s of servers) await s.destroy();
});

const postgresProcesses = (dir: string): number => {
  const out = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(dir)).length;
};

test('a real server on a unix socket: data survives a crash and a restart; kill leaves no process', async () => {
  const s = await startPostgres();
  servers.push(s);
  await s.query('CREATE TABLE t (v int)');
  await s.query('INSERT INTO t VALUES (1), (2)');
  const pool = new pg.Pool({ connectionString: s.url, max: 2 });
  pool.on('error', () => {});
  assert.deepEqual((await pool.query('SELECT count(*)::int AS n FROM t')).rows, [{ n: 2 }]);

  // Every server process goes with kill(), as in a crash: the backends (each in a session of its own, so
  // not in the postmaster's process group) and the auxiliary processes, not only the postmaster.
  const dir = s.socketDir.replace(/\/sock$/, '');
  const postmaster = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.includes(`${dir}/data`));
  const serverProcesses = await childrenOf(Number(postmaster?.trim().split(' ')[0]));
  assert.ok(serverProcesses.length >= 2, `backends and auxiliary processes seen: ${serverProcesses.length}`);
  await s.kill();
  assert.equal(s.running(), false);
  const alive = [];
  for (const pid of serverProcesses) if (await running(pid)) alive.push(pid);
  assert.deepEqual(alive, [], 'no backend or auxiliary process outlives kill()');
  await assert.rejects(pool.query('SELECT 1'));
  assert.equal(
    postgresProcesses(s.socketDir.replace(/\/sock$/, '')),
    0,
    'no postgres process outlives kill()',
  );

  await s.start();
  assert.deepEqual((await pool.query('SELECT count(*)::int AS n FROM t')).rows, [{ n: 2 }]);
  await s.stop();
  await s.start();
  assert.deepEqual(await s.query('SELECT count(*)::int AS n FROM t'), [{ n: 2 }]);
  await pool.end();
});

test('tcp: listens on 127.0.0.1 at a free port; another database can be made', async () => {
  const s = await startPostgres({ tcp: true });
  servers.push(s);
  assert.match(s.url, /^postgres:\/\/steward@127\.0\.0\.1:\d+\/steward$/);
  await s.createDatabase('other');
  const c = new pg.Client({ connectionString: s.urlFor('other') });
  await c.connect();
  assert.deepEqual((await c.query('SELECT current_database() AS d')).rows, [{ d: 'other' }]);
  await c.end();
});
