/**
 * The guardrails end to end (SPEC §2): the file provider on a real directory,
 * a real local Git repository, an injected clock. Each test tries to make the
 * agent act where it must not.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTestRepo, type TestRepo } from '../helpers/git-repo.js';
import { type Harness, makeHarness } from '../helpers/harness.js';

const file = (name: string, content: string, path = `f/${name}.conf`) =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: { path: ${path}, content: ${JSON.stringify(content)} }\n`;

const names = (n: number) => Array.from({ length: n }, (_, i) => `r${String(i).padStart(2, '0')}`);

interface Fleet {
  repo: TestRepo;
  h: Harness;
}

/** A repo with `n` Files and a harness; the files are pre-created on disk (converged), so setup is not mass drift. */
async function fleet(
  t: { after: (fn: () => Promise<void>) => void },
  n: number,
  guardrails: string,
  mode: 'observe' | 'enforce' = 'enforce',
): Promise<Fleet> {
  const base = await mkdtemp(join(tmpdir(), 'steward-g-'));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  for (const name of names(n)) await repo.write(`fleet/${name}.yaml`, file(name, `${name} v1\n`));
  await repo.commit('v1');
  const h = await makeHarness({ sourceUrl: repo.workDir, guardrails, mode });
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(h.root, 'f'));
  for (const name of names(n)) await writeFile(join(h.root, `f/${name}.conf`), `${name} v1\n`);
  t.after(async () => {
    await h.close();
    await rm(base, { recursive: true, force: true });
  });
  return { repo, h };
}

const content = (h: Harness, name: string) => readFile(join(h.root, `f/${name}.conf`), 'utf8');
const tamper = async (h: Harness, list: string[]) => {
  for (const n of list) await writeFile(join(h.root, `f/${n}.conf`), 'tampered\n');
};
const MINUTE = 60_000;

const LOOSE = `soak: { observeCycles: 0 }
maxActionsPerCycle: 10
massDrift: { maxDrifted: 50, maxDriftedPercent: 30, minManaged: 5 }
rateLimit: { actionsPerMinute: 600, burst: 100 }`;

test('1 tampered file of 10 is reverted', async (t) => {
  const { h } = await fleet(t, 10, LOOSE);
  assert.equal((await h.cycle()).drifted, 0);
  await tamper(h, ['r03']);
  const r = await h.cycle();
  assert.equal(r.applied, 1);
  assert.equal(r.frozen, false);
  assert.equal(await content(h, 'r03'), 'r03 v1\n');
});

test('6 of 10 tampered: frozen, nothing changed, drift still reported, the freeze survives a restart', async (t) => {
  const { h } = await fleet(t, 10, LOOSE);
  await h.cycle();
  const six = names(10).slice(0, 6);
  await tamper(h, six);
  const r = await h.cycle();
  assert.equal(r.frozen, true);
  assert.equal(r.applied, 0);
  assert.equal(r.drifted, 6);
  assert.deepEqual(r.held, { 'mass-drift': 6 });
  for (const n of six) assert.equal(await content(h, n), 'tampered\n');
  const frozenEvents = h.events.filter((e) => e.type === 'mass_drift_frozen');
  assert.equal(frozenEvents.length, 1);
  assert.match(
    (frozenEvents[0] as { reason: string }).reason,
    /6 of 10 managed resources \(60%\) would change; limit 30%/,
  );
  const freeze = h.agent.currentState.freeze!;
  assert.equal(freeze.by, 'steward (mass-drift halt)');

  // Detection goes on; no second alert for the same freeze.
  await tamper(h, ['r07']);
  const again = await h.cycle();
  assert.equal(again.drifted, 7);
  assert.equal(again.applied, 0);
  assert.deepEqual(again.held, { frozen: 7 });
  assert.equal(h.events.filter((e) => e.type === 'mass_drift_frozen').length, 1);

  await h.restart();
  assert.deepEqual(h.agent.currentState.freeze, freeze);
  const afterRestart = await h.cycle();
  assert.equal(afterRestart.frozen, true);
  assert.equal(afterRestart.applied, 0);
  for (const n of [...six, 'r07']) assert.equal(await content(h, n), 'tampered\n');
});

test('exactly at the threshold does not freeze; below minManaged only the count limit applies', async (t) => {
  const { h } = await fleet(t, 10, LOOSE);
  await h.cycle();
  await tamper(h, ['r00', 'r01', 'r02']); // 3 of 10 = 30 %: at the limit
  const r = await h.cycle();
  assert.equal(r.frozen, false);
  assert.equal(r.applied, 3);

  const small = await fleet(t, 4, LOOSE); // 4 < minManaged 5: 100 % may change
  await small.h.cycle();
  await tamper(small.h, names(4));
  const s = await small.h.cycle();
  assert.equal(s.frozen, false);
  assert.equal(s.applied, 4);
});

test('a manual freeze stops actions while detection goes on; unfreeze resumes', async (t) => {
  const { h } = await fleet(t, 10, LOOSE);
  await h.cycle();
  await h.agent.freeze('incident 42', 'alice');
  assert.deepEqual(
    h.events.filter((e) => e.type === 'frozen'),
    [{ type: 'frozen', reason: 'incident 42', by: 'alice' }],
  );
  await tamper(h, ['r01']);
  const r = await h.cycle();
  assert.equal(r.drifted, 1);
  assert.equal(r.applied, 0);
  assert.deepEqual(r.held, { frozen: 1 });
  assert.equal(await content(h, 'r01'), 'tampered\n');
  await h.restart();
  assert.equal(h.agent.currentState.freeze?.reason, 'incident 42');
  assert.equal((await h.cycle()).applied, 0);
  await h.agent.unfreeze('alice', null);
  assert.equal((await h.cycle()).applied, 1);
  assert.equal(await content(h, 'r01'), 'r01 v1\n');
});

test('approveRevision lifts a mass-drift freeze for that revision only, and the cap still rolls it out gradually', async (t) => {
  const { repo, h } = await fleet(t, 10, LOOSE.replace('maxActionsPerCycle: 10', 'maxActionsPerCycle: 3'));
  await h.cycle();
  // A fleet-wide change in Git: 10 of 10 would change.
  for (const n of names(10)) await repo.write(`fleet/${n}.yaml`, file(n, `${n} v2\n`));
  const v2 = await repo.commit('v2 everywhere');
  const r = await h.cycle();
  assert.equal(r.frozen, true);
  assert.equal(r.applied, 0);

  await h.agent.unfreeze('bob', v2);
  const applied: number[] = [];
  for (let i = 0; i < 4; i++) {
    h.clock.now += MINUTE;
    applied.push((await h.cycle()).applied);
  }
  assert.deepEqual(applied, [3, 3, 3, 1], 'at most maxActionsPerCycle per cycle, oldest drift first');
  for (const n of names(10)) assert.equal(await content(h, n), `${n} v2\n`);

  // The approval is for v2 only: a mass change in v3 freezes again.
  for (const n of names(10)) await repo.write(`fleet/${n}.yaml`, file(n, `${n} v3\n`));
  await repo.commit('v3 everywhere');
  const v3 = await h.cycle();
  assert.equal(v3.frozen, true);
  assert.equal(v3.applied, 0);
});

test('a new revision gets its soak cycles before any action', async (t) => {
  const { repo, h } = await fleet(
    t,
    10,
    LOOSE.replace('soak: { observeCycles: 0 }', 'soak: { observeCycles: 2 }'),
  );
  await h.cycle();
  await h.cycle();
  await repo.write('fleet/r00.yaml', file('r00', 'r00 v2\n'));
  await repo.commit('v2 for r00');
  const soaking = [await h.cycle(), await h.cycle()];
  for (const s of soaking) {
    assert.equal(s.soaking, true);
    assert.equal(s.applied, 0);
    assert.deepEqual(s.held, { soak: 1 });
  }
  assert.equal(await content(h, 'r00'), 'r00 v1\n');
  const third = await h.cycle();
  assert.equal(third.soaking, false);
  assert.equal(third.applied, 1);
  assert.equal(await content(h, 'r00'), 'r00 v2\n');
});

test('a failing resource backs off on schedule, raises one stuck event after N cycles and one recovery', async (t) => {
  const g = `soak: { observeCycles: 0 }
backoff: { base: 30s, factor: 2, max: 10m, jitter: 0 }
nonConvergence: { alertAfterCycles: 3 }
rateLimit: { actionsPerMinute: 600, burst: 100 }`;
  const { repo, h } = await fleet(t, 5, g);
  // r00's file must live under a folder that is a FILE on disk: every apply fails.
  await repo.write('fleet/r00.yaml', file('r00', 'x\n', 'blocked/r00.conf'));
  await repo.commit('r00 moves under blocked/');
  await writeFile(join(h.root, 'blocked'), 'i am a file');
  const t0 = h.clock.now;
  const tries: number[] = [];
  // Run a cycle every 10 s for 8 minutes; record when r00 was attempted.
  for (let s = 0; s <= 480; s += 10) {
    h.clock.now = t0 + s * 1000;
    const r = await h.cycle();
    if (r.failed > 0) tries.push(s);
    const d = r.drift.find((x) => x.name === 'r00')!;
    if (tries.at(-1) !== s) assert.equal(d.held, 'backoff', `at ${s}s r00 must be held by backoff`);
  }
  // attempts at 0, then +30 s, +60 s, +120 s, +240 s (jitter 0)
  assert.deepEqual(tries, [0, 30, 90, 210, 450]);
  const stuck = h.events.filter((e) => e.type === 'resource_stuck');
  assert.equal(stuck.length, 1, 'one stuck event, not one per cycle');
  assert.equal((stuck[0] as { key: string }).key, 'File/r00');
  assert.equal(h.agent.currentState.resources['File/r00']!.stuck, true);

  // Fix the cause; the next attempt (after the backoff) succeeds, and one recovery follows.
  await rm(join(h.root, 'blocked'));
  h.clock.now = t0 + 20 * MINUTE;
  const fix = await h.cycle();
  assert.equal(fix.applied, 1);
  h.clock.now += 10_000;
  await h.cycle();
  h.clock.now += 10_000;
  await h.cycle();
  assert.deepEqual(
    h.events.filter((e) => e.type === 'resource_recovered').map((e) => (e as { key: string }).key),
    ['File/r00'],
  );
  const rec = h.agent.currentState.resources['File/r00']!;
  assert.equal(rec.attempts, 0, 'success resets the backoff');
  assert.equal(rec.stuck, false);
});

test('an apply that "succeeds" but does not stick (another actor fights us) backs off and goes stuck', async (t) => {
  const g = `soak: { observeCycles: 0 }
backoff: { base: 30s, factor: 2, max: 10m, jitter: 0 }
nonConvergence: { alertAfterCycles: 2 }
rateLimit: { actionsPerMinute: 600, burst: 100 }`;
  const { h } = await fleet(t, 5, g);
  await h.cycle();
  const t0 = h.clock.now;
  const applies: number[] = [];
  for (let s = 0; s <= 300; s += 10) {
    h.clock.now = t0 + s * 1000;
    await tamper(h, ['r02']); // the other actor rewrites it before every cycle
    const r = await h.cycle();
    if (r.applied > 0) applies.push(s);
  }
  // applied at 0; seen drifted again at 10 → did not stick, 30 s backoff → 40; at 50 again → 60 s → 110; 120 → 120 s → 240
  assert.deepEqual(applies, [0, 40, 110, 240]);
  assert.equal(h.events.filter((e) => e.type === 'resource_stuck').length, 1);
});

test('the cap: never more than maxActionsPerCycle per cycle, and 0 means none', async (t) => {
  const { h } = await fleet(
    t,
    10,
    LOOSE.replace('maxActionsPerCycle: 10', 'maxActionsPerCycle: 2').replace(
      'maxDriftedPercent: 30',
      'maxDriftedPercent: 100',
    ),
  );
  await h.cycle();
  await tamper(h, names(5));
  const counts: number[] = [];
  for (let i = 0; i < 3; i++) {
    h.clock.now += MINUTE;
    counts.push((await h.cycle()).applied);
  }
  assert.deepEqual(counts, [2, 2, 1]);

  const zero = await fleet(t, 3, LOOSE.replace('maxActionsPerCycle: 10', 'maxActionsPerCycle: 0'));
  await tamper(zero.h, ['r00']);
  const r = await zero.h.cycle();
  assert.equal(r.applied, 0);
  assert.deepEqual(r.held, { cap: 1 });
});

test('the token bucket limits actions across cycles', async (t) => {
  const g = `soak: { observeCycles: 0 }
maxActionsPerCycle: 100
massDrift: { maxDrifted: 100, maxDriftedPercent: 100, minManaged: 5 }
rateLimit: { actionsPerMinute: 6, burst: 3 }`;
  const { h } = await fleet(t, 10, g);
  await tamper(h, names(10));
  const first = await h.cycle();
  assert.equal(first.applied, 3, 'burst');
  assert.equal(first.held['rate-limit'], 7);
  h.clock.now += 20_000; // 6/min → 2 tokens in 20 s
  assert.equal((await h.cycle()).applied, 2);
  assert.equal((await h.cycle()).applied, 0, 'no time passed, no tokens');
});

test('observe mode and report-only fields never act', async (t) => {
  const { h } = await fleet(t, 6, LOOSE, 'observe');
  await tamper(h, ['r00']);
  for (let i = 0; i < 3; i++) assert.equal((await h.cycle()).applied, 0);
  assert.equal(await content(h, 'r00'), 'tampered\n');

  const g = `${LOOSE}\nfieldPolicy: { File: { /spec/content: report } }`;
  const rep = await fleet(t, 6, g);
  await tamper(rep.h, ['r00']);
  const r = await rep.h.cycle();
  assert.equal(r.applied, 0);
  assert.deepEqual(r.held, { 'report-only': 1 });
  assert.equal(r.drift[0]!.state, 'report-only');
  assert.equal(await content(rep.h, 'r00'), 'tampered\n');
});

test('a freeze requested during a cycle stops the actions not yet started', async (t) => {
  const g = `soak: { observeCycles: 0 }
maxActionsPerCycle: 100
massDrift: { maxDrifted: 100, maxDriftedPercent: 100, minManaged: 5 }
rateLimit: { actionsPerMinute: 6000, burst: 1000 }`;
  const { h } = await fleet(t, 40, g);
  await h.cycle();
  await tamper(h, names(40));
  // Freeze as soon as the first action has been audited (the audit log is written after the apply step,
  // so watch the file provider's output instead: the first reverted file).
  const cycle = h.cycle();
  const { watch } = await import('node:fs');
  await new Promise<void>((resolve) => {
    const w = watch(join(h.root, 'f'), () => {
      w.close();
      resolve();
    });
  });
  await h.agent.freeze('stop now', 'carol');
  const r = await cycle;
  assert.ok(r.applied < 40, `the freeze must cut the cycle short (applied ${r.applied})`);
  const after = await h.cycle();
  assert.equal(after.applied, 0);
  assert.equal(after.frozen, true);
});
