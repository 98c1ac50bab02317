/**
 * Fail closed (SPEC §9) where the state is concerned: an approval is spent,
 * a state disk that fails turns actions off (never the guardrails), and every
 * action has its write-ahead record. Real files, a real local Git repository,
 * a real tmpfs for the full disk; an injected clock.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isStewardError } from '../../core/errors.js';
import { createLogger, type Logger } from '../../agent/log.js';
import { FileStateStore } from '../../agent/state/file-store.js';
import type { AuditRecord, StateStore } from '../../agent/state/types.js';
import { createTestRepo, git, type TestRepo } from '../helpers/git-repo.js';
import { type Harness, makeHarness } from '../helpers/harness.js';

const file = (name: string, content: string) =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: { path: f/${name}.conf, content: ${JSON.stringify(content)} }\n`;
const names = (n: number) => Array.from({ length: n }, (_, i) => `r${String(i).padStart(3, '0')}`);
const MINUTE = 60_000;

async function fleet(
  t: { after: (fn: () => Promise<void>) => void },
  n: number,
  guardrails: string,
  opts: {
    store?: (dir: string) => StateStore;
    beforeInit?: (stateDir: string) => Promise<void>;
    log?: Logger;
  } = {},
): Promise<{ repo: TestRepo; h: Harness }> {
  const base = await mkdtemp(join(tmpdir(), 'steward-fc-'));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  // One manifest file for the whole fleet: a fleet-wide change is one commit.
  await repo.write(
    'fleet/all.yaml',
    names(n)
      .map((x) => file(x, `${x} v1\n`))
      .join('---\n'),
  );
  await repo.commit('v1');
  const h = await makeHarness({
    sourceUrl: repo.workDir,
    guardrails,
    ...(opts.store ? { store: (c) => opts.store!(c.state.dir) } : {}),
    ...(opts.beforeInit ? { beforeInit: opts.beforeInit } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  await mkdir(join(h.root, 'f'));
  for (const x of names(n)) await writeFile(join(h.root, `f/${x}.conf`), `${x} v1\n`);
  t.after(async () => {
    await h.close();
    await rm(base, { recursive: true, force: true });
  });
  return { repo, h };
}

const content = (h: Harness, name: string) => readFile(join(h.root, `f/${name}.conf`), 'utf8');
const tamper = async (h: Harness, list: string[], text = 'tampered\n') => {
  for (const n of list) await writeFile(join(h.root, `f/${n}.conf`), text);
};

/** Rewrites `list` by hand, runs a cycle a minute later, and checks it froze, acted on nothing and left them. */
async function tamperExpectFrozen(h: Harness, list: string[], why: string) {
  await tamper(h, list);
  h.clock.now += MINUTE;
  const r = await h.cycle();
  assert.equal(r.frozen, true, why);
  assert.equal(r.applied, 0);
  for (const n of list.slice(0, 5)) assert.equal(await content(h, n), 'tampered\n');
  return r;
}

const G = `soak: { observeCycles: 0 }
maxActionsPerCycle: 50
massDrift: { maxDrifted: 1000, maxDriftedPercent: 30, minManaged: 5 }
rateLimit: { actionsPerMinute: 6000, burst: 1000 }
backoff: { base: 30s, factor: 2, max: 10m, jitter: 0 }`;

test('an approval is spent once its change converged: a later mass tamper under the same revision freezes, 0 reverts', async (t) => {
  const { repo, h } = await fleet(t, 200, G);
  assert.equal((await h.cycle()).drifted, 0);
  await repo.write(
    'fleet/all.yaml',
    names(200)
      .map((x) => file(x, `${x} v2\n`))
      .join('---\n'),
  );
  const v2 = await repo.commit('v2 everywhere');
  const frozen = await h.cycle();
  assert.equal(frozen.frozen, true);
  assert.equal(frozen.applied, 0);

  await h.agent.unfreeze('bob', v2);
  let applied = 0;
  for (let i = 0; i < 4; i++) {
    h.clock.now += MINUTE;
    applied += (await h.cycle()).applied;
  }
  assert.equal(applied, 200, 'the approved change rolls out under the cap (4 × 50)');
  h.clock.now += MINUTE;
  const converged = await h.cycle();
  assert.equal(converged.drifted, 0);
  assert.deepEqual(h.agent.currentState.approvals, [], 'the approval is spent once its change converged');

  // Someone rewrites 160 of 200 files by hand, under the same revision.
  const events = h.events.length;
  const tampered = await tamperExpectFrozen(h, names(160), 'the mass tamper freezes again');
  assert.deepEqual(tampered.held, { 'mass-drift': 160 });
  assert.equal(h.events.slice(events).filter((e) => e.type === 'mass_drift_frozen').length, 1);
});

test('an approval covers the drift it approved, not a mass tamper that comes on top during the rollout', async (t) => {
  const { repo, h } = await fleet(t, 200, G.replace('maxActionsPerCycle: 50', 'maxActionsPerCycle: 10'));
  await h.cycle();
  // 70 of 200 change in Git (above the 30 % limit): frozen, approved.
  const changed = names(70);
  await repo.write(
    'fleet/all.yaml',
    names(200)
      .map((x) => file(x, changed.includes(x) ? `${x} v2\n` : `${x} v1\n`))
      .join('---\n'),
  );
  const v2 = await repo.commit('v2 for 70');
  assert.equal((await h.cycle()).frozen, true);
  await h.agent.unfreeze('bob', v2);
  h.clock.now += MINUTE;
  assert.equal((await h.cycle()).applied, 10);
  // Mid-rollout, 100 files the approval never covered are rewritten by hand.
  await tamperExpectFrozen(
    h,
    names(200).slice(100, 200),
    'drift outside the approved change is checked by the halt',
  );
});

test('approving while not frozen is a conflict and stores nothing', async (t) => {
  const { repo, h } = await fleet(t, 10, G);
  await h.cycle();
  const sha = await repo.head();
  await assert.rejects(
    () => h.agent.unfreeze('mallory', sha),
    (e: unknown) => isStewardError(e, 'NOT_FROZEN'),
  );
  assert.deepEqual(h.agent.currentState.approvals, []);
  await assert.rejects(
    () => h.agent.unfreeze('mallory', null),
    (e: unknown) => isStewardError(e, 'NOT_FROZEN'),
  );
});

/** A real FileStateStore whose writes can be made to fail (ENOSPC) from the test: the store boundary. */
class FlakyStore extends FileStateStore {
  failSave = false;
  failAudit: ((records: readonly AuditRecord[]) => boolean) | null = null;
  readonly order: string[] = [];
  override async save(s: Parameters<FileStateStore['save']>[0]): Promise<void> {
    if (this.failSave)
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    await super.save(s);
    this.order.push('save');
  }
  override async appendAudit(records: readonly AuditRecord[]): Promise<void> {
    if (this.failAudit?.(records))
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    await super.appendAudit(records);
    for (const r of records) this.order.push(`${r.outcome}:${r.name}`);
  }
}

test('write-ahead: the token, the attempt and the audit intent are durable before the action starts', async (t) => {
  let store: FlakyStore | undefined;
  const { h } = await fleet(t, 10, G, { store: (dir) => (store = new FlakyStore(dir)) });
  await h.cycle();
  await tamper(h, ['r000', 'r001']);
  store!.order.length = 0;
  const r = await h.cycle();
  assert.equal(r.applied, 2);
  // save (write-ahead state), both intents, then each outcome, then the end-of-cycle save.
  assert.deepEqual(store!.order, [
    'save',
    'started:r000',
    'started:r001',
    'applied:r000',
    'applied:r001',
    'save',
  ]);
});

test('a failing state save: no action, detection goes on, unwritable reported once, recovery acts again', async (t) => {
  let store: FlakyStore | undefined;
  const logged: Array<{ level: string; msg: string }> = [];
  const log = createLogger(
    'info',
    { write: (l: string) => void logged.push(JSON.parse(l)) },
    { format: 'json' },
  );
  const { h } = await fleet(t, 10, G, { store: (dir) => (store = new FlakyStore(dir)), log });
  await h.cycle();
  store!.failSave = true;
  for (let i = 0; i < 5; i++) {
    await tamper(h, ['r003']); // a competing writer keeps changing it
    h.clock.now += MINUTE;
    const r = await h.cycle();
    assert.equal(r.drifted, 1, 'detection goes on');
    assert.equal(r.applied, 0, 'no action without its record');
    assert.deepEqual(r.held, { 'state-unwritable': 1 });
  }
  assert.equal(await content(h, 'r003'), 'tampered\n');
  assert.equal(h.agent.stateWritable, false);
  assert.equal(h.events.filter((e) => e.type === 'state_unwritable').length, 1);
  const audit = await store!.readAudit(0);
  assert.equal(audit.records.filter((a) => a.name === 'r003').length, 0);

  store!.failSave = false;
  h.clock.now += MINUTE;
  const back = await h.cycle();
  assert.equal(back.applied, 1);
  assert.equal(h.agent.stateWritable, true);
  assert.equal(h.events.filter((e) => e.type === 'state_recovered').length, 1);
  assert.equal(await content(h, 'r003'), 'r003 v1\n');
  // One warning when the cycles started being held (not one per cycle), one line when it was over.
  assert.deepEqual(
    logged
      .filter((l) => /cycles (no longer )?held/.test(l.msg))
      .map((l) => `${l.level} ${l.msg.replace(/\(.*\)/, '(…)')}`),
    [
      'warn cycles held, the state cannot be written (…): drift is detected, nothing is applied',
      'info cycles no longer held: acting again',
    ],
  );
});

test('a failing audit intent: no action; a failing outcome line stops the batch after the action in flight', async (t) => {
  let store: FlakyStore | undefined;
  const { h } = await fleet(t, 10, G, { store: (dir) => (store = new FlakyStore(dir)) });
  await h.cycle();
  store!.failAudit = (recs) => recs.some((r) => r.outcome === 'started');
  await tamper(h, ['r000', 'r001', 'r002']);
  const r = await h.cycle();
  assert.equal(r.applied, 0);
  assert.deepEqual(r.held, { 'state-unwritable': 3 });
  for (const n of ['r000', 'r001', 'r002']) assert.equal(await content(h, n), 'tampered\n');

  // Intents are written; the first outcome line fails: the action in flight is done, no further one starts.
  store!.failAudit = (recs) => recs.some((x) => x.outcome !== 'started');
  h.clock.now += MINUTE;
  const r2 = await h.cycle();
  assert.equal(r2.applied + r2.failed, 1, 'only the action in flight');
  assert.equal(h.agent.stateWritable, false);
  const changed = (await Promise.all(['r000', 'r001', 'r002'].map((n) => content(h, n)))).filter(
    (c) => c !== 'tampered\n',
  );
  assert.equal(changed.length, 1);
  const started = (await store!.readAudit(0)).records.filter((a) => a.outcome === 'started');
  assert.equal(started.length, 3, 'every action that ran has its intent line');
});

/** Mounts a small tmpfs (root only; the CI runs as root). */
function mountTmpfs(dir: string, size: string): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(
      `this test needs a small tmpfs for a real full disk: mount failed (${(e as Error).message.trim()}); run the suite as root`,
    );
  }
}

test('a full state volume (real tmpfs): 0 actions without an audit line, at most one per resource, unready, one alert', async (t) => {
  let stateDir = '';
  const { h } = await fleet(t, 30, G, {
    beforeInit: async (dir) => {
      stateDir = dir;
      await mkdir(dir, { recursive: true });
      mountTmpfs(dir, '256k');
      // Registered before the harness's own cleanup, so it runs first and nothing stays mounted.
      t.after(() => execFileSync('umount', ['-l', dir]));
    },
  });
  await h.cycle();
  // Fill the volume.
  const filler = join(stateDir, 'filler');
  await writeFile(filler, Buffer.alloc(1024 * 1024)).catch((e) => {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  });
  const victims = names(30).slice(0, 3);
  let applied = 0;
  for (let i = 0; i < 10; i++) {
    await tamper(h, victims, `tampered ${i}\n`); // a competing writer
    h.clock.now += 1000;
    const r = await h.cycle();
    applied += r.applied + r.failed;
    assert.equal(r.drifted, 3, 'detection goes on');
  }
  assert.equal(applied, 0, 'no action while its record cannot be written');
  assert.equal(h.agent.stateWritable, false, 'unready');
  assert.equal(h.events.filter((e) => e.type === 'state_unwritable').length, 1, 'one alert');
  for (const n of victims) assert.equal(await content(h, n), 'tampered 9\n');

  await unlink(filler);
  h.clock.now += MINUTE;
  const back = await h.cycle();
  assert.equal(back.applied, 3);
  const audit = await new FileStateStore(stateDir).readAudit(0);
  const per = new Map<string, string[]>();
  for (const a of audit.records.reverse()) per.set(a.name, [...(per.get(a.name) ?? []), a.outcome]);
  for (const n of victims) assert.deepEqual(per.get(n), ['started', 'applied'], n);
  assert.equal(h.events.filter((e) => e.type === 'state_recovered').length, 1);
});

test('observe errors raise observe_failing once and observe_recovered once; nothing is created for them', async (t) => {
  const { h } = await fleet(t, 10, G);
  await h.cycle();
  // r004's path becomes a directory: it cannot be observed as a file.
  await rm(join(h.root, 'f/r004.conf'));
  await mkdir(join(h.root, 'f/r004.conf'));
  for (let i = 0; i < 3; i++) {
    h.clock.now += MINUTE;
    const r = await h.cycle();
    assert.equal(r.observeErrors, 1);
    assert.equal(r.applied, 0);
  }
  assert.deepEqual(
    h.events.filter((e) => e.type === 'observe_failing'),
    [{ type: 'observe_failing', count: 1, codes: ['FILE_NOT_REGULAR'] }],
  );
  await rm(join(h.root, 'f/r004.conf'), { recursive: true });
  await writeFile(join(h.root, 'f/r004.conf'), 'r004 v1\n');
  h.clock.now += MINUTE;
  assert.equal((await h.cycle()).observeErrors, 0);
  assert.equal(h.events.filter((e) => e.type === 'observe_recovered').length, 1);
});

test('a revision that stops managing more than the mass-drift limits raises mass_release (the files are left)', async (t) => {
  const { repo, h } = await fleet(t, 10, G);
  await h.cycle();
  await repo.write(
    'fleet/all.yaml',
    names(10)
      .slice(0, 4)
      .map((x) => file(x, `${x} v1\n`))
      .join('---\n'),
  );
  await repo.commit('6 of 10 removed');
  const r = await h.cycle();
  assert.equal(r.released, 6);
  const mass = h.events.filter((e) => e.type === 'mass_release');
  assert.equal(mass.length, 1);
  assert.deepEqual(
    { ...mass[0], sha: 'x' },
    { type: 'mass_release', sha: 'x', released: 6, managedBefore: 10 },
  );
  for (const n of names(10).slice(4))
    assert.equal(await content(h, n), `${n} v1\n`, 'released files are left');
  // Removing one more (1 of 4) is no mass release.
  await repo.write(
    'fleet/all.yaml',
    names(10)
      .slice(0, 3)
      .map((x) => file(x, `${x} v1\n`))
      .join('---\n'),
  );
  await repo.commit('one more removed');
  await h.cycle();
  assert.equal(h.events.filter((e) => e.type === 'mass_release').length, 1);
});

test('an approval is spent when its change converged even if a report-only drift it covered never will: a later mass tamper freezes', async (t) => {
  const { repo, h } = await fleet(t, 200, G);
  const reportOnly = 'r199';
  const manifests = (v2: readonly string[]) =>
    names(200)
      .map((x) => {
        const m = file(x, v2.includes(x) ? `${x} v2\n` : `${x} v1\n`);
        return x === reportOnly ? m.replace('spec:', 'policy: { onDrift: report }\nspec:') : m;
      })
      .join('---\n');
  await repo.write('fleet/all.yaml', manifests([]));
  await repo.commit('r199 is report-only');
  assert.equal((await h.cycle()).drifted, 0);
  // Someone edits the report-only file: reported, never reverted, so it never converges.
  await tamper(h, [reportOnly], 'hand edit\n');
  assert.deepEqual((await h.cycle()).held, { 'report-only': 1 });

  // 70 of 200 change in Git: frozen, approved, rolled out.
  await repo.write('fleet/all.yaml', manifests(names(70)));
  const v2 = await repo.commit('v2 for 70');
  assert.equal((await h.cycle()).frozen, true);
  await h.agent.unfreeze('bob', v2);
  let applied = 0;
  for (let i = 0; i < 3; i++) {
    h.clock.now += MINUTE;
    applied += (await h.cycle()).applied;
  }
  assert.equal(applied, 70);
  assert.deepEqual(h.agent.currentState.approvals, [], 'nothing the approval covered is left to converge');

  // The 70 approved files are rewritten by hand, under the same revision (35 % > 30 %).
  await tamperExpectFrozen(h, names(70), 'the mass tamper freezes');
});

test('a state dir that comes back empty (a volume not mounted) is not a first start: a persisted freeze is not lost', async (t) => {
  const { h } = await fleet(t, 10, G);
  await h.cycle();
  await h.agent.freeze('maintenance', 'alice');
  await tamper(h, ['r000']);
  assert.equal((await h.cycle()).applied, 0);

  // The state volume does not mount: the state dir is an empty directory again.
  await h.agent.stop();
  await rename(h.stateDir, `${h.stateDir}.unmounted`);
  await mkdir(h.stateDir);
  let started = true;
  try {
    await h.restart();
  } catch {
    started = false; // refusing to start is fail-closed too
  }
  if (started) {
    h.clock.now += MINUTE;
    const r = await h.cycle();
    assert.equal(r.applied, 0, 'nothing acts while the freeze may have been lost');
  }
  assert.equal(await content(h, 'r000'), 'tampered\n');
});

test('an approval does not outlive its revision: one left unconverged when Git moved on does not come back with it', async (t) => {
  const { repo, h } = await fleet(t, 200, G.replace('maxActionsPerCycle: 50', 'maxActionsPerCycle: 10'));
  const manifests = (v2: readonly string[]) =>
    names(200)
      .map((x) => file(x, v2.includes(x) ? `${x} v2\n` : `${x} v1\n`))
      .join('---\n');
  await h.cycle();
  // 70 of 200 change in Git: frozen, approved; the rollout starts (10 a cycle)...
  await repo.write('fleet/all.yaml', manifests(names(70)));
  const v2 = await repo.commit('v2 for 70');
  assert.equal((await h.cycle()).frozen, true);
  await h.agent.unfreeze('bob', v2);
  h.clock.now += MINUTE;
  assert.equal((await h.cycle()).applied, 10);
  // ...and is abandoned: Git goes back to v1 in a new commit, which converges.
  await repo.write('fleet/all.yaml', manifests([]));
  await repo.commit('back to v1');
  h.clock.now += MINUTE;
  assert.equal((await h.cycle()).applied, 10);
  h.clock.now += MINUTE;
  assert.equal((await h.cycle()).drifted, 0);
  assert.deepEqual(h.agent.currentState.approvals, [], 'the approval went with its revision');

  // Months later a pusher force-pushes the old approved commit: 70 of 200 would change.
  await git(repo.workDir, ['reset', '-q', '--hard', v2]);
  h.clock.now += MINUTE;
  const r = await h.cycle();
  assert.equal(r.revision, v2);
  assert.equal(r.frozen, true, 'the mass-drift halt holds: nobody approved this change now');
  assert.equal(r.applied, 0);
});
