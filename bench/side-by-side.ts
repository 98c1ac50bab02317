/**
 * Issue 12's rows that have a floor, each side by side in one run, alternated, with the ratio printed:
 *
 * - `steady cycle`: the daemon's steady cycle over 3,000 File resources (the real Reconciler, FileProvider
 *   and FileStateStore, everything converged) against the floor's observe-and-compare step alone
 *   (`readFileSync` of every managed file and a string compare), in the same process. Target ≤ 2×.
 * - `accept 10k`: accepting a new 10,000-file revision into an empty cache (`DesiredStateSource.poll()`:
 *   ref, fetch, read, parse, validate) against `git clone --depth 1` of the same repository over the same
 *   smart-HTTP server plus js-yaml `loadAll` of every file of the checkout. Target ≤ 2×.
 * - `accept one-file push`: the same source after a push that changes one file (the parsed-manifest cache:
 *   one blob read and parsed) against `git fetch --depth 1` into a warm clone plus parsing that one file.
 *
 * In-process, no child: run it alone (`--only side-by-side`) for figures; a busy machine moves both sides.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import * as yaml from 'js-yaml';
import { silentLogger } from '../agent/log.js';
import { Reconciler } from '../agent/reconciler.js';
import { createGitEngine } from '../agent/source/engine.js';
import { DesiredStateSource, type Revision } from '../agent/source/source.js';
import { FileStateStore } from '../agent/state/file-store.js';
import { freshState, type PersistedState } from '../agent/state/types.js';
import { seededRandom } from '../policies/backoff.js';
import { FileProvider } from '../providers/file/provider.js';
import { KINDS } from '../providers/registry.js';
import { createTestRepo, type TestRepo } from '../test/helpers/git-repo.js';
import { startGitServer } from '../test/helpers/git-server.js';
import { median } from './harness.js';
import { setup as planFloorSetup } from './plan-floor.js';
import { benchGuardrails } from './synthetic.js';
import type { Benchmark, Row } from './types.js';

const run = promisify(execFile);
const NAME = 'side-by-side';
const STEADY_N = 3_000;
const ACCEPT_N = 10_000;
const RUNS = Number(process.env['STEWARD_BENCH_RUNS'] ?? 7);
const ACCEPT_RUNS = 5;

function row(c: string, n: number, mine: number[], floor: number[], max: number, note: string): Row[] {
  const ratio = median(mine) / median(floor);
  const base = { benchmark: NAME, n, rate: null, peakRssMiB: null } as const;
  return [
    {
      ...base,
      case: `${c}: floor`,
      runs: floor.length,
      medianMs: median(floor),
      minMs: Math.min(...floor),
      maxMs: Math.max(...floor),
      target: null,
    },
    {
      ...base,
      case: `${c}: steward`,
      runs: mine.length,
      medianMs: median(mine),
      minMs: Math.min(...mine),
      maxMs: Math.max(...mine),
      figure: `${ratio.toFixed(2)} × floor`,
      target: { value: ratio, max, label: `≤ ${max} × floor` },
      note,
    },
  ];
}

async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export async function steadyCycle(progress: (m: string) => void): Promise<Row[]> {
  const f = planFloorSetup(STEADY_N);
  try {
    const source = new DesiredStateSource(
      createGitEngine(
        {
          url: f.repo,
          kind: 'local',
          ref: 'main',
          path: 'fleet',
          auth: null,
          cacheDir: join(f.dir, 'cache'),
        },
        'auto',
      ),
      KINDS,
      Date.now,
    );
    if ((await source.poll()).kind !== 'accepted')
      throw new Error('side-by-side: the fleet was not accepted');
    const revision = source.current as Revision;
    const stateDir = join(f.dir, 'state');
    const provider = new FileProvider({ root: f.root, stateDir });
    const store = new FileStateStore(stateDir);
    let now = Date.now();
    const reconciler = new Reconciler({
      kinds: KINDS,
      providers: new Map([['file', provider]]),
      store,
      guardrails: benchGuardrails(STEADY_N),
      initialMode: 'enforce',
      clock: () => now,
      random: seededRandom(7),
      log: silentLogger,
      emit: () => {},
    });
    let state: PersistedState = freshState();
    const cycle = async () => {
      state = (await reconciler.cycle(revision, state, () => false)).state;
      now += 30_000; // a reconcile.interval between cycles: the rate limit refills as in the agent
    };
    const wanted = revision.resources.map((r) => [join(f.root, r.spec['path'] as string), r.spec['content']]);
    const drifted = () => {
      let n = 0;
      for (const [path, content] of wanted) {
        let seen: string | null = null;
        try {
          seen = readFileSync(path as string, 'utf8');
        } catch {}
        if (seen !== content) n++;
      }
      return n;
    };
    // Converge the 1 % drifted (the guardrails pace the applies), then a few steady cycles more.
    for (let i = 0; i < 50 && drifted() > 0; i++) await cycle();
    if (drifted() !== 0) throw new Error(`side-by-side: ${drifted()} files still drifted after 50 cycles`);
    for (let i = 0; i < 3; i++) await cycle();
    const floorStep = () => {
      if (drifted() !== 0) throw new Error('side-by-side: the floor saw drift in a converged fleet');
    };
    const mine: number[] = [];
    const floor: number[] = [];
    const bytes0 = store.bytesWritten;
    for (let i = 0; i < RUNS; i++) {
      progress(`${NAME}: steady cycle ${i + 1}/${RUNS}`);
      mine.push(await time(cycle));
      floor.push(await time(floorStep));
    }
    const written = (store.bytesWritten - bytes0) / RUNS;
    return row(
      'steady cycle',
      STEADY_N,
      mine,
      floor,
      2,
      `Reconciler.cycle with FileProvider + FileStateStore, all converged (${written.toFixed(0)} state bytes written per cycle) vs readFileSync + compare of every file`,
    );
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
}

const manifest = (i: number, v = 0): string =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: r${i} }\nspec: { path: f/r${i}.conf, content: "r${i} v${v}\\nline two\\n" }\n`;
const manifestPath = (i: number): string =>
  `fleet/d${String(Math.floor(i / 100)).padStart(3, '0')}/r${i}.yaml`;

/** js-yaml loadAll of every .yaml below `dir`: the floor's parse. */
function parseTree(dir: string): number {
  let docs = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith('.yaml')) continue;
    docs += yaml.loadAll(readFileSync(join(e.parentPath, e.name), 'utf8')).length;
  }
  return docs;
}

async function accept(progress: (m: string) => void): Promise<Row[]> {
  const base = mkdtempSync(join(tmpdir(), 'steward-bench-accept-'));
  const server = await startGitServer({ projectRoot: base });
  try {
    progress(`${NAME}: building a ${ACCEPT_N}-file repository`);
    const repo: TestRepo = await createTestRepo({ projectRoot: base, name: 'fleet' });
    for (let d = 0; d < ACCEPT_N / 100; d++)
      mkdirSync(join(repo.workDir, 'fleet', `d${String(d).padStart(3, '0')}`), { recursive: true });
    for (let i = 0; i < ACCEPT_N; i++) writeFileSync(join(repo.workDir, manifestPath(i)), manifest(i));
    await repo.commitAndPush('fleet');
    const url = server.repoUrl('fleet');
    let k = 0;
    const source = () =>
      new DesiredStateSource(
        createGitEngine(
          { url, kind: 'http', ref: 'main', path: 'fleet', auth: null, cacheDir: join(base, `cache-${k++}`) },
          'auto',
        ),
        KINDS,
        Date.now,
      );
    const acceptOnce = async (s: DesiredStateSource, n: number) => {
      const o = await s.poll();
      if (o.kind !== 'accepted' || o.revision.resources.length !== n)
        throw new Error(`side-by-side: poll was ${o.kind}`);
    };
    const cloneAndParse = async () => {
      const dir = join(base, `clone-${k++}`);
      await run('git', ['clone', '--quiet', '--depth', '1', '--no-tags', url, dir]);
      if (parseTree(join(dir, 'fleet')) !== ACCEPT_N) throw new Error('side-by-side: the clone parsed wrong');
      return dir;
    };
    await acceptOnce(source(), ACCEPT_N); // warm-up, both sides
    await cloneAndParse();
    const mine: number[] = [];
    const floor: number[] = [];
    for (let i = 0; i < ACCEPT_RUNS; i++) {
      progress(`${NAME}: accept ${i + 1}/${ACCEPT_RUNS}`);
      mine.push(await time(() => acceptOnce(source(), ACCEPT_N)));
      floor.push(await time(cloneAndParse));
    }
    // One-file pushes: the warm source against a warm clone that fetches and parses the changed file.
    const warm = source();
    await acceptOnce(warm, ACCEPT_N);
    const clone = await cloneAndParse();
    const pushMine: number[] = [];
    const pushFloor: number[] = [];
    for (let i = 0; i < ACCEPT_RUNS; i++) {
      progress(`${NAME}: one-file push ${i + 1}/${ACCEPT_RUNS}`);
      const victim = (i * 997) % ACCEPT_N;
      await repo.write(manifestPath(victim), manifest(victim, i + 1));
      await repo.commitAndPush(`edit ${i}`);
      pushMine.push(await time(() => acceptOnce(warm, ACCEPT_N)));
      pushFloor.push(
        await time(async () => {
          await run('git', ['-C', clone, 'fetch', '--quiet', '--depth', '1', 'origin', 'main']);
          const { stdout } = await run('git', ['-C', clone, 'show', `FETCH_HEAD:${manifestPath(victim)}`]);
          if (yaml.loadAll(stdout).length !== 1)
            throw new Error('side-by-side: the fetched file parsed wrong');
        }),
      );
    }
    return [
      ...row(
        'accept 10k revision',
        ACCEPT_N,
        mine,
        floor,
        2,
        'DesiredStateSource.poll() into an empty cache (native engine) vs git clone --depth 1 + js-yaml loadAll of every file',
      ),
      ...row(
        'accept one-file push',
        ACCEPT_N,
        pushMine,
        pushFloor,
        1.5,
        `warm source (parsed-manifest cache: ${warm.manifests.parsed - ACCEPT_N} files parsed after the first accept) vs git fetch --depth 1 + git show + loadAll of the changed file`,
      ),
    ];
  } finally {
    await server.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

export const sideBySide: Benchmark = {
  name: NAME,
  description:
    'steady cycle at 3,000 vs the floor observe step; accepting a 10k revision vs git clone --depth 1 + parse',
  async run(ctx) {
    return [...(await steadyCycle(ctx.progress)), ...(await accept(ctx.progress))];
  },
};
