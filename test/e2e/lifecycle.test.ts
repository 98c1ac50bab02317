/**
 * Lifecycle with real agent processes: SIGTERM in the middle of a long cycle
 * finishes the action in flight, starts no new one, flushes the state and
 * exits 0; a second agent on the same state directory refuses to run.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileStateStore } from '../../agent/state/file-store.js';
import {
  countFiles,
  killAllAgents,
  startAgentProcess,
  until,
  writeBigFleet,
} from '../helpers/agent-process.js';

const N = 1000;

test('SIGTERM mid-cycle: the action in flight finishes, no new one starts, state is flushed, exit 0', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-stop-'));
  t.after(async () => {
    killAllAgents();
    await rm(base, { recursive: true, force: true });
  });
  const fleet = await writeBigFleet(base, N, 'enforce');
  const agent = startAgentProcess(['run', '-c', fleet.config]);
  const dir = join(fleet.managed, 'f');
  await until(async () => (await countFiles(dir)) >= 20, `the first applies (${agent.stderr()})`);
  const signalledAt = Date.now();
  agent.child.kill('SIGTERM');
  assert.equal(await agent.exited, 0, agent.stderr());
  const stopSeconds = (Date.now() - signalledAt) / 1000;
  assert.ok(stopSeconds < 30, `stopped within the stop timeout (${stopSeconds}s)`);

  const onDisk = await countFiles(dir);
  assert.ok(onDisk < N, `the cycle was cut short (${onDisk} of ${N})`);
  const leftovers = (await readdir(dir)).filter((f) => !f.endsWith('.conf'));
  assert.deepEqual(leftovers, [], 'no half-written temp files: the action in flight finished');

  const store = new FileStateStore(fleet.stateDir);
  const audit = await store.readAudit(0);
  assert.deepEqual(audit.skipped, []);
  const outcomes = audit.records.filter((r) => r.outcome !== 'started');
  assert.equal(outcomes.length, onDisk, 'every started action finished and was audited; none started after');
  const intents = new Set(audit.records.filter((r) => r.outcome === 'started').map((r) => r.action));
  assert.ok(
    outcomes.every((r) => intents.has(r.action)),
    'every outcome has its write-ahead intent',
  );
  const state = await store.load();
  const recorded = Object.values(state.resources).filter(
    (r) => r.lastApplied !== undefined && r.verifyPending,
  ).length;
  assert.equal(recorded, onDisk, 'the state was flushed with every apply of the interrupted cycle');
  for (const r of outcomes.slice(0, 5))
    assert.equal(await readFile(join(fleet.managed, r.id!), 'utf8'), `${r.name}\n`);
  await assert.rejects(
    readFile(join(fleet.stateDir, 'agent.lock')),
    { code: 'ENOENT' },
    'the lock is released',
  );
});

test('a second agent on the same state directory refuses to run, with a clear message', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-lock-'));
  t.after(async () => {
    killAllAgents();
    await rm(base, { recursive: true, force: true });
  });
  const fleet = await writeBigFleet(base, 10, 'observe');
  const first = startAgentProcess(['run', '-c', fleet.config]);
  await until(
    async () =>
      (await readFile(join(fleet.stateDir, 'agent.lock'), 'utf8').catch(() => '')).trim() ===
      String(first.child.pid),
    'the lock',
  );
  const second = startAgentProcess(['run', '-c', fleet.config]);
  assert.equal(await second.exited, 1);
  assert.match(
    second.stderr(),
    new RegExp(`STATE_LOCKED: another steward \\(pid ${first.child.pid}\\) is using the state directory`),
  );
  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0, first.stderr());
});
