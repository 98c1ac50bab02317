/**
 * kill -9 at random points of a long cycle, ten times over: the rate limit is
 * never refunded by a crash (the tokens are durable before the actions start),
 * no action runs without its audit intent, and nothing is applied twice.
 * Real agent processes (the CLI), a real local Git repository, real files.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { seededRandom } from '../../policies/backoff.js';
import { FileStateStore } from '../../agent/state/file-store.js';
import {
  countFiles,
  killAllAgents,
  startAgentProcess,
  until,
  writeBigFleet,
} from '../helpers/agent-process.js';

const N = 500;
const BURST = 200;
const PER_MINUTE = 300;
const KILLS = 10;

/**
 * Counts the state saves since it was created: by the change of state.json's identity (it is renamed into
 * place at a compaction) or of state.journal's size (every other save appends a line to it).
 */
async function stateSaves(stateDir: string): Promise<() => Promise<number>> {
  const ident = async (name: string) => {
    const st = await stat(join(stateDir, name)).catch(() => null);
    return st ? `${st.ino}:${st.mtimeMs}:${st.size}` : '';
  };
  const id = async () => `${await ident('state.json')}|${await ident('state.journal')}`;
  let last = await id();
  let n = 0;
  return async () => {
    const now = await id();
    if (now !== last) {
      n++;
      last = now;
    }
    return n;
  };
}

test(`kill -9 at random points of a ${N}-action cycle, ${KILLS} times: actions never exceed the bucket, nothing applied twice`, async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-crashb-'));
  t.after(async () => {
    killAllAgents();
    await rm(base, { recursive: true, force: true });
  });
  const fleet = await writeBigFleet(base, N, 'enforce', {
    rateLimit: `{ actionsPerMinute: ${PER_MINUTE}, burst: ${BURST} }`,
    // An action a crash cut off counts as an attempt: with this backoff it is not retried during the test.
    guardrails: ['backoff: { base: 10m, factor: 2, max: 1h, jitter: 0 }'],
    reconcileInterval: '300ms',
  });
  const dir = join(fleet.managed, 'f');
  const random = seededRandom(7);
  const startedAt = Date.now();
  let kills = 0;
  for (let i = 0; i < KILLS; i++) {
    const before = await countFiles(dir);
    const saves = await stateSaves(fleet.stateDir);
    const agent = startAgentProcess(['run', '-c', fleet.config]);
    // A random point: after 20..119 more files, or — once the bucket has little left to give — after a
    // random number of the agent's own cycles (each ends with a state save), whatever the machine's load.
    const more = 20 + Math.floor(random() * 100);
    const cycles = 2 + Math.floor(random() * 3);
    await until(
      async () => (await countFiles(dir)) >= before + more || (await saves()) >= cycles,
      `agent run ${i} (${agent.stderr().slice(0, 500)})`,
      60_000,
    );
    agent.child.kill('SIGKILL');
    assert.equal(
      await agent.exited,
      null,
      `run ${i} was killed, not exited: ${agent.stderr().slice(0, 1000)}`,
    );
    kills++;
  }
  const elapsedMinutes = (Date.now() - startedAt) / 60_000;
  const allowed = BURST + Math.ceil(PER_MINUTE * elapsedMinutes);

  // The files on disk are the actions that really ran (each resource's only action is its creation).
  const created = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.conf'));
  const audit = await new FileStateStore(fleet.stateDir).readAudit(0);
  const intents = new Map<string, number>();
  const applied = new Map<string, number>();
  for (const r of audit.records) {
    const m = r.outcome === 'started' ? intents : applied;
    m.set(r.name, (m.get(r.name) ?? 0) + 1);
  }
  t.diagnostic(
    `${kills} kills over ${(elapsedMinutes * 60).toFixed(1)} s: ${created.length} files created, ` +
      `${intents.size} intents, bucket allows ${allowed}`,
  );
  assert.ok(created.length > 0, 'the agent did act between the kills');
  assert.ok(created.length <= allowed, `${created.length} actions against a bucket of ${allowed}`);
  assert.ok(intents.size <= allowed, `${intents.size} intents against a bucket of ${allowed}`);
  const withoutIntent = created.map((f) => f.replace(/\.conf$/, '')).filter((n) => !intents.has(n));
  assert.deepEqual(withoutIntent, [], 'no action without its write-ahead record');
  assert.deepEqual(
    [...intents].filter(([, c]) => c > 1),
    [],
    'no resource was attempted twice',
  );
  assert.deepEqual(
    [...applied].filter(([, c]) => c > 1),
    [],
    'nothing applied twice',
  );
});
