/**
 * The file provider never writes outside its root, even while another
 * process swaps a managed parent directory for a symlink to an outside
 * directory and back in a tight loop (SPEC §9).
 *
 * The agent runs its real apply loop (content writes, creates, deletes,
 * chmods, new nested directories every revision) while a child process — on
 * the other core — swaps `d` for `d → outside` and back. Afterwards the
 * outside directory is byte-for-byte what it was and no temp file is left
 * anywhere. `STEWARD_RACE_SECONDS` shortens the race for local runs; the
 * suite runs it for 20 s.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { constants } from 'node:fs';
import {
  chmod,
  type FileHandle,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rm,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TEMP_PREFIX } from '../../core/atomic-file.js';
import { createTestRepo } from '../helpers/git-repo.js';
import { makeHarness } from '../helpers/harness.js';

const SECONDS = Number(process.env['STEWARD_RACE_SECONDS'] ?? 20);

const GUARDRAILS = [
  'soak: { observeCycles: 0 }',
  'maxActionsPerCycle: 1000',
  'massDrift: { maxDrifted: 100000, maxDriftedPercent: 100, minManaged: 100000 }',
  'rateLimit: { actionsPerMinute: 100000, burst: 100000 }',
  'backoff: { base: 1ms, factor: 1, max: 1ms, jitter: 0 }',
].join('\n');

/** Swaps `<root>/d` for a symlink to `outside` and back until the time is up; prints its counts. */
const SWAPPER = `
const fs = require('node:fs');
const [root, outside, ms, stop] = process.argv.slice(1);
const d = root + '/d', hold = root + '/d.hold';
let swaps = 0, strays = 0;
const HOLD_MS = 1;
function restore() {
  for (let i = 0; i < 1000; i++) {
    try { fs.renameSync(hold, d); return; } catch {}
    try {
      const st = fs.lstatSync(d);
      if (st.isSymbolicLink()) fs.unlinkSync(d);
      else fs.renameSync(d, root + '/stray-' + strays++);
    } catch {}
  }
}
const end = Date.now() + Number(ms);
for (let n = 0; Date.now() < end && (n % 64 || !fs.existsSync(stop)); n++) {
  try { fs.renameSync(d, hold); } catch { continue; }
  try { fs.symlinkSync(outside, d); swaps++; } catch {}
  restore();
  for (const until = Date.now() + HOLD_MS; Date.now() < until; ); // the real directory, briefly: applies get through
}
process.stdout.write(JSON.stringify({ swaps, strays }));
`;

function revision(i: number): string {
  const docs: string[] = [];
  const doc = (name: string, spec: string) =>
    docs.push(`apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: ${spec}\n`);
  const mode = i % 2 ? '0600' : '0644'; // odd revisions change only the mode: chmod
  for (let j = 0; j < 8; j++)
    doc(`f${j}`, `{ path: d/f${j}.conf, content: "c${Math.floor(i / 2)}-${j}\\n", mode: "${mode}" }`);
  for (let j = 0; j < 4; j++)
    doc(
      `e${j}`,
      (i + j) % 2 ? `{ path: d/e${j}.conf, ensure: absent }` : `{ path: d/e${j}.conf, content: "e${i}\\n" }`,
    );
  for (let j = 0; j < 2; j++) doc(`n${j}`, `{ path: d/gen${i}/x/y/n${j}.conf, content: "n${i}\\n" }`);
  return docs.join('---\n');
}

/** A new revision (new nested dirs, ensure flips) every this many cycles; by-hand drift in between. */
const REVISION_EVERY = 5;

/**
 * Drift by hand under `<root>/d` for revision `i`: contents, modes, files
 * that should not be there and files that should. The test's own writes go
 * through a handle on `d` opened with O_NOFOLLOW, so they never land outside
 * either; while `d` is swapped they are skipped.
 */
async function tamper(root: string, i: number): Promise<void> {
  let d: FileHandle;
  try {
    d = await open(join(root, 'd'), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch {
    return;
  }
  const at = (name: string) => `/proc/self/fd/${d.fd}/${name}`;
  const quiet = (p: Promise<unknown>) => p.catch(() => {});
  try {
    for (let j = 0; j < 4; j++) await quiet(writeFile(at(`f${j}.conf`), 'by hand\n', { flag: 'r+' }));
    for (let j = 4; j < 8; j++) await quiet(chmod(at(`f${j}.conf`), 0o606));
    for (let j = 0; j < 4; j++)
      await quiet((i + j) % 2 ? writeFile(at(`e${j}.conf`), 'stray\n') : unlink(at(`e${j}.conf`)));
  } finally {
    await d.close();
  }
}

/** Every entry under `dir` (not following symlinks) with the content of each regular file. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    const rel = p.slice(dir.length);
    if (e.isFile()) out.push(`${rel}=${await readFile(p, 'utf8')}`);
    else out.push(`${rel}/${e.isDirectory() ? 'dir' : 'other'}`);
  }
  return out.sort();
}

async function tempFiles(dir: string): Promise<string[]> {
  const all = await readdir(dir, { withFileTypes: true, recursive: true });
  return all.filter((e) => e.name.startsWith(TEMP_PREFIX)).map((e) => join(e.parentPath, e.name));
}

test(`a managed directory swapped for a symlink to outside, ${SECONDS} s: nothing written outside, no temp left`, {
  timeout: (SECONDS + 120) * 1000,
}, async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-race-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  const h = await makeHarness({ sourceUrl: repo.workDir, guardrails: GUARDRAILS });
  t.after(() => h.close());
  const outside = join(base, 'outside');
  await mkdir(join(outside, 'sub'), { recursive: true });
  await writeFile(join(outside, 'keep.txt'), 'outside\n');
  await writeFile(join(outside, 'f0.conf'), 'not yours\n');
  await writeFile(join(outside, 'sub', 'deep.txt'), 'deep\n');
  const before = await snapshot(outside);

  await repo.write('fleet/all.yaml', revision(0));
  await repo.commit('r0');
  assert.equal((await h.cycle()).failed, 0, 'the first revision applies cleanly');

  const stopFile = join(base, 'stop');
  const child = spawn(process.execPath, ['-e', SWAPPER, h.root, outside, String(SECONDS * 1000), stopFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const exited = once(child, 'exit');
  let running = true;
  void exited.then(() => {
    running = false;
  });
  t.after(() => {
    if (running) child.kill('SIGKILL');
  });

  const started = performance.now();
  let cycles = 0;
  let applied = 0;
  let failed = 0;
  let gitMs = 0;
  let escapedAfterMs: number | null = null;
  let i = 0; // the revision in force
  for (let n = 1; running; n++) {
    if (n % REVISION_EVERY === 0) {
      const t0 = performance.now();
      await repo.write('fleet/all.yaml', revision(++i));
      await repo.commit(`r${i}`);
      gitMs += performance.now() - t0;
    } else await tamper(h.root, i);
    h.clock.now += 3_600_000; // backoff and rate limit never hold the loop back
    const r = await h.cycle();
    cycles++;
    applied += r.applied;
    failed += r.failed;
    if (escapedAfterMs === null && (await snapshot(outside)).join('\n') !== before.join('\n')) {
      escapedAfterMs = Math.round(performance.now() - started);
      const now = await snapshot(outside);
      console.log(`escaped: ${now.filter((e) => !before.includes(e)).join(', ')}`);
      await writeFile(stopFile, '');
      break;
    }
  }
  await exited;
  const swapper = out ? (JSON.parse(out) as { swaps: number; strays: number }) : { swaps: -1, strays: -1 };
  const audit = (await readFile(join(h.stateDir, 'audit.log'), 'utf8')).trim().split('\n');
  const why: Record<string, number> = {};
  for (const l of audit) {
    const e = (JSON.parse(l) as { error?: string }).error?.replace(/"[^"]*"/g, '…').slice(0, 50);
    if (e) why[e] = (why[e] ?? 0) + 1;
  }
  console.log(`failed applies, by reason: ${JSON.stringify(why)}`);
  console.log(
    `race: ${swapper.swaps} swaps, ${cycles} cycles (${Math.round(gitMs)} ms in git commits), ${applied} applied, ${failed} failed` +
      (escapedAfterMs === null ? '' : `, ESCAPED after ${escapedAfterMs} ms`),
  );

  assert.equal(escapedAfterMs, null, `a write escaped the root after ${escapedAfterMs} ms`);
  assert.deepEqual(await snapshot(outside), before, 'the outside directory is unchanged');
  assert.deepEqual(await tempFiles(outside), [], 'no temp file outside');
  assert.deepEqual(await tempFiles(h.root), [], 'no temp file left in the root');
  assert.ok(swapper.swaps > 100, `the swapper really raced (${swapper.swaps} swaps)`);
  assert.ok(applied > 50, `the agent really applied (${applied} applies)`);

  // With the swaps over, the fleet converges.
  let last = await h.cycle();
  for (let k = 0; k < 3 && last.drifted + last.errors.length > 0; k++) {
    h.clock.now += 3_600_000;
    last = await h.cycle();
  }
  assert.equal(last.drifted, 0, 'converged once the swaps stopped');
  assert.deepEqual(last.errors, []);
  assert.equal(await readFile(join(h.root, 'd', 'f7.conf'), 'utf8'), `c${Math.floor(i / 2)}-7\n`);
});
