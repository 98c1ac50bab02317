/**
 * kill -9 in the middle of a cycle, then a restart: the state loads, the mode
 * is as before, the audit log is readable, and nothing is applied twice.
 * Real agent processes (the CLI), a real local Git repository.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileStateStore } from '../../agent/state/file-store.js';
import { freshState } from '../../agent/state/types.js';
import {
  countFiles,
  killAllAgents,
  startAgentProcess as startAgent,
  until,
  writeBigFleet,
} from '../helpers/agent-process.js';

const N = 1000;
const name = (i: number) => `r${String(i).padStart(4, '0')}`;

test('kill -9 mid-cycle, restart: state loads, mode kept, audit readable, nothing applied twice', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-crash-'));
  t.after(async () => {
    killAllAgents(); // never leave an agent behind, even when an assertion failed
    await rm(base, { recursive: true, force: true });
  });
  // The config says observe; the persisted mode (enforce) must win.
  // The actions a crash cut off were written ahead as attempts, so they wait one (short, here) backoff step.
  const { managed, stateDir, config } = await writeBigFleet(base, N, 'observe', {
    guardrails: ['backoff: { base: 500ms, factor: 2, max: 1s, jitter: 0 }'],
    reconcileInterval: '1s',
  });
  const store = new FileStateStore(stateDir);
  await store.save({ ...freshState(), mode: 'enforce' });

  // Run 1: killed once a few files are written, long before the 1000th.
  const first = startAgent(['run', '-c', config]);
  await until(
    async () => (await countFiles(join(managed, 'f'))) >= 20,
    `the first applies (${first.stderr()})`,
  );
  first.child.kill('SIGKILL');
  assert.equal(await first.exited, null, 'killed by a signal');
  const written = await countFiles(join(managed, 'f'));
  assert.ok(written < N, `the kill must land mid-cycle (found ${written} of ${N} files)`);

  const auditAfterKill = await store.readAudit(0);
  const outcomesAfterKill = auditAfterKill.records.filter((r) => r.outcome !== 'started');
  assert.ok(outcomesAfterKill.length >= written - 1, 'every apply but the one in flight is already audited');
  assert.equal(
    auditAfterKill.records.filter((r) => r.outcome === 'started').length,
    N,
    'the whole batch was written ahead',
  );
  // The state still loads, with the mode as it was.
  const afterKill = await store.load();
  assert.equal(afterKill.mode, 'enforce');

  // Run 2: converges the rest, then a graceful stop.
  const second = startAgent(['run', '-c', config]);
  await until(async () => (await countFiles(join(managed, 'f'))) === N, 'all files', 60_000);
  await until(
    async () => (await store.readAudit(0)).records.filter((r) => r.outcome !== 'started').length >= N - 1,
    'the audit of the second run',
  ).catch(async (e) => {
    const a = await store.readAudit(0);
    throw new Error(
      `${e.message}: ${a.records.length} records, skipped ${JSON.stringify(a.skipped)}; ${second.stderr().slice(0, 2000)}`,
    );
  });
  // Wait for the cycle to be recorded in the state before stopping.
  await until(
    async () => Object.keys((await store.load()).resources).length === N,
    'the state of the second run',
  );
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0, second.stderr());

  for (const i of [0, 1, 500, N - 1])
    assert.equal(await readFile(join(managed, 'f', `${name(i)}.conf`), 'utf8'), `${name(i)}\n`);
  const audit = await store.readAudit(0);
  assert.ok(audit.skipped.length <= 1, `at most one torn line: ${JSON.stringify(audit.skipped)}`);
  const perName = new Map<string, number>();
  for (const r of audit.records)
    if (r.outcome === 'applied') perName.set(r.name, (perName.get(r.name) ?? 0) + 1);
  const twice = [...perName].filter(([, c]) => c > 1);
  assert.deepEqual(twice, [], 'nothing applied twice');
  assert.ok(perName.size >= N - 1, `every apply is audited but at most the one in flight (${perName.size})`);
  const final = await store.load();
  assert.equal(final.mode, 'enforce');
  assert.equal(final.freeze, null);
});
