/**
 * Git: what polling and fetching desired state costs, against native git.
 *
 * A real smart-HTTP server (`git http-backend` behind node:http, the test
 * helper that counts requests and bytes) serves two repositories made with
 * real git: 1k and 10k manifest files (one File resource each, 100 files per
 * folder, one commit).
 *
 *  - `unchanged poll`: `DesiredStateSource.poll()` when the ref has not moved —
 *    requests, bytes and pack requests per poll (target: no pack), with each
 *    engine (isomorphic-git, and the native engine's `git ls-remote`);
 *  - `first fetch`: `GitRepository.ensure()` into an empty cache (what the
 *    agent does on first start) against `git init --bare && git fetch
 *    --depth 1 URL +refs/heads/main:…` over the same server, alternating,
 *    medians, ratio (target ≤ 2× native);
 *  - `changed fetch`: one manifest changed and pushed, then the same fetch
 *    into the warm cache / the warm native repository (what every push
 *    costs from then on), ratio (target ≤ 2× native);
 *  - `changed fetch, thin-pack`: a what-if, not the agent's code — the same
 *    isomorphic-git fetch with `thin-pack` added to the capabilities it sends
 *    (isomorphic-git leaves it out; `git upload-pack` then answers a shallow
 *    `deepen 1` fetch with the whole tree, even for a client that has all but
 *    one blob);
 *  - `read + parse`: what follows a fetch in the agent — `readManifests(sha)`
 *    (every manifest blob from the object store) and `parseRevision`;
 *  - `…, native engine`: the same first fetch, changed fetch and read with the
 *    agent's native engine (NativeGitEngine: `git fetch` behind the relay, thin
 *    packs; `ls-tree` + one `cat-file --batch`), each side by side with plain
 *    `git fetch` in the same alternated runs; the read row prints
 *    isomorphic-git's read time as a multiple of the native engine's.
 */
import * as fs from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import git, { type GitHttpRequest, type GitHttpResponse, type HttpClient } from 'isomorphic-git';
import nodeHttp from 'isomorphic-git/http/node';
import { parseRevision } from '../agent/manifest.js';
import { createGitEngine, type EngineKind } from '../agent/source/engine.js';
import { GitRepository } from '../agent/source/git.js';
import { NativeGitEngine } from '../agent/source/native-git.js';
import { DesiredStateSource } from '../agent/source/source.js';
import { KINDS } from '../providers/registry.js';
import { createTestRepo, git as gitCli, type TestRepo } from '../test/helpers/git-repo.js';
import { type GitServer, startGitServer } from '../test/helpers/git-server.js';
import { isMain, median, reply, runInChild } from './harness.js';
import { buildFleet, NOW, yamlDoc } from './synthetic.js';
import type { Benchmark, Row } from './types.js';

const NAME = 'git';
const SIZES = [1_000, 10_000] as const;
const FILES_PER_DIR = 100;
const RATIO_TARGET = 2;
const POLLS = 20;
const REF = 'refs/heads/main';

/** Timed repetitions (after one untimed warm-up of each side). */
const reps = (n: number): number => (n >= 10_000 ? 5 : 7);

interface Side {
  ms: number[];
  /** Response bytes of the upload-pack POSTs (the pack, in side-band frames) per fetch. */
  packBytes: number[];
  requests: number[];
}

interface Comparison {
  /** The isomorphic engine (GitRepository). */
  iso: Side;
  /** The agent's native engine (NativeGitEngine: git behind the relay). */
  engine: Side;
  /** Plain `git fetch`, the floor. */
  native: Side;
}

interface SizeResult {
  n: number;
  buildMs: number;
  first: Comparison;
  changed: Comparison;
  thin: Side;
  readMs: number[];
  parseMs: number[];
  /** readManifests(sha) of the native engine. */
  engineReadMs: number[];
}

interface PollResult {
  engine: EngineKind;
  n: number;
  ms: number[];
  requests: number;
  bytes: number;
  packRequests: number;
  serverPacks: number;
}

interface ChildResult {
  sizes: SizeResult[];
  polls: PollResult[];
}

const emptySide = (): Side => ({ ms: [], packBytes: [], requests: [] });

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`git benchmark: sanity check failed: ${what}`);
}

const manifestPath = (i: number, name: string): string =>
  `fleet/d${String(Math.floor(i / FILES_PER_DIR)).padStart(3, '0')}/${name}.yaml`;

/** A repository of `n` manifest files, one File each, in one commit; returns its sha. */
async function buildRepo(projectRoot: string, n: number): Promise<{ repo: TestRepo; sha: string }> {
  const repo = await createTestRepo({ projectRoot, name: `fleet-${n}` });
  const fleet = buildFleet(n);
  for (let d = 0; d < n / FILES_PER_DIR; d++)
    await mkdir(join(repo.workDir, 'fleet', `d${String(d).padStart(3, '0')}`), { recursive: true });
  for (const [i, r] of fleet.resources.entries())
    await writeFile(join(repo.workDir, manifestPath(i, r.name)), yamlDoc(r));
  const sha = await repo.commit('fleet');
  await repo.push();
  return { repo, sha };
}

/** Runs `fetch` with the server's request log cleared; records time, pack bytes and requests. */
async function timed(server: GitServer, side: Side, fetch: () => Promise<void>): Promise<void> {
  server.clearRequests();
  const t0 = performance.now();
  await fetch();
  side.ms.push(performance.now() - t0);
  side.packBytes.push(
    server.requests
      .filter((r) => r.method === 'POST' && r.service === 'git-upload-pack')
      .reduce((a, r) => a + r.bytesOut, 0),
  );
  side.requests.push(server.requests.length);
}

async function* once(buf: Uint8Array): AsyncIterableIterator<Uint8Array> {
  yield buf;
}

/**
 * isomorphic-git's HTTP client, plus `thin-pack` in the capabilities of the
 * first pkt-line of every upload-pack request: the what-if.
 */
const thinPackHttp: HttpClient = {
  async request(req: GitHttpRequest): Promise<GitHttpResponse> {
    if (req.method !== 'POST' || !req.url.endsWith('/git-upload-pack') || !req.body)
      return nodeHttp.request(req);
    const chunks: Buffer[] = [];
    for await (const c of req.body) chunks.push(Buffer.from(c));
    const body = Buffer.concat(chunks);
    const len = Number.parseInt(body.subarray(0, 4).toString('ascii'), 16);
    const first = body.subarray(4, len).toString('latin1');
    const line = first.endsWith('\n') ? `${first.slice(0, -1)} thin-pack\n` : `${first} thin-pack`;
    const out = Buffer.concat([
      Buffer.from(`${(line.length + 4).toString(16).padStart(4, '0')}${line}`, 'latin1'),
      body.subarray(len),
    ]);
    return nodeHttp.request({
      ...req,
      body: once(out),
      headers: { ...req.headers, 'content-length': String(out.length) },
    });
  },
};

/** The fetch `GitRepository.ensure` makes (same options), through the thin-pack client. */
async function thinPackFetch(gitdir: string, url: string): Promise<void> {
  await git.fetch({
    fs,
    http: thinPackHttp,
    gitdir,
    url,
    ref: 'refs/remotes/origin/main',
    remoteRef: REF,
    singleBranch: true,
    depth: 1,
    tags: false,
  });
}

async function nativeFetch(gitdir: string, url: string): Promise<void> {
  await gitCli(gitdir, ['fetch', '--quiet', '--depth', '1', url, `+${REF}:refs/remotes/origin/main`]);
}

async function benchSize(base: string, server: GitServer, n: number): Promise<SizeResult> {
  const t0 = performance.now();
  const { repo, sha } = await buildRepo(base, n);
  const buildMs = performance.now() - t0;
  const url = server.repoUrl(`fleet-${n}`);
  const newRepo = (): Promise<GitRepository> =>
    mkdtemp(join(base, 'iso-')).then(
      (cacheDir) =>
        new GitRepository({ url, kind: 'http', ref: 'main', path: 'fleet', auth: null, cacheDir }),
    );
  const newEngine = (): Promise<NativeGitEngine> =>
    mkdtemp(join(base, 'engine-')).then(
      (cacheDir) =>
        new NativeGitEngine({ url, kind: 'http', ref: 'main', path: 'fleet', auth: null, cacheDir }),
    );

  // First fetch, alternating sides; rep 0 is the untimed warm-up.
  const first: Comparison = { iso: emptySide(), engine: emptySide(), native: emptySide() };
  const readMs: number[] = [];
  const parseMs: number[] = [];
  const engineReadMs: number[] = [];
  const scratch: Comparison = { iso: emptySide(), engine: emptySide(), native: emptySide() };
  let warmIso: GitRepository | undefined;
  let warmEngine: NativeGitEngine | undefined;
  let warmNative = '';
  for (let k = 0; k <= reps(n); k++) {
    const into = k === 0 ? scratch : first;
    const iso = async (): Promise<void> => {
      let r: GitRepository | undefined;
      await timed(server, into.iso, async () => {
        r = await newRepo();
        await r.ensure(sha, REF);
      });
      if (!r) return;
      warmIso = r;
      let t = performance.now();
      const read = await r.readManifests(sha);
      const tRead = performance.now() - t;
      t = performance.now();
      const parsed = parseRevision(read.files, KINDS);
      const tParse = performance.now() - t;
      check(read.files.length === n && read.problems.length === 0, `${n} manifests read`);
      check(parsed.ok && parsed.resources.length === n, `${n} resources parsed`);
      if (k > 0) {
        readMs.push(tRead);
        parseMs.push(tParse);
      }
    };
    const native = (): Promise<void> =>
      timed(server, into.native, async () => {
        warmNative = await mkdtemp(join(base, 'native-'));
        await gitCli(warmNative, ['init', '--quiet', '--bare']);
        await nativeFetch(warmNative, url);
      });
    const engine = async (): Promise<void> => {
      let e: NativeGitEngine | undefined;
      await timed(server, into.engine, async () => {
        e = await newEngine();
        await e.ensure(sha, REF);
      });
      if (!e) return;
      warmEngine = e;
      const t = performance.now();
      const read = await e.readManifests(sha);
      if (k > 0) engineReadMs.push(performance.now() - t);
      check(
        read.files.length === n && read.problems.length === 0,
        `${n} manifests read by the native engine`,
      );
    };
    const order = [iso, engine, native];
    for (let s = 0; s < order.length; s++) await order[(s + k) % order.length]!();
  }
  if (!warmIso || !warmEngine) throw new Error('git benchmark: no warm repository');
  const isoRepo = warmIso;
  const engineRepo = warmEngine;
  check(
    (await gitCli(warmNative, ['rev-parse', 'refs/remotes/origin/main'])) === sha,
    'native fetched the commit',
  );

  // Changed fetch: one manifest edited and pushed, then both warm sides fetch it.
  const thinDir = join(base, 'thin');
  await git.init({ fs, gitdir: thinDir, bare: true, defaultBranch: 'steward' });
  await git.addRemote({ fs, gitdir: thinDir, remote: 'origin', url, force: true });
  await thinPackFetch(thinDir, url);
  const fleet = buildFleet(n);
  const changed: Comparison = { iso: emptySide(), engine: emptySide(), native: emptySide() };
  const thin = emptySide();
  const victim = Math.floor(n / 2);
  for (let k = 0; k <= reps(n); k++) {
    const r = fleet.resources[victim]!;
    const edited = { ...r, spec: { ...r.spec, content: `${String(r.spec['content'])}# change ${k}\n` } };
    await repo.write(manifestPath(victim, r.name), yamlDoc(edited));
    const next = await repo.commitAndPush(`change ${k}`);
    const into = k === 0 ? scratch : changed;
    const sides = [
      () => timed(server, into.iso, () => isoRepo.ensure(next, REF)),
      () => timed(server, into.native, () => nativeFetch(warmNative, url)),
      () => timed(server, into.engine, () => engineRepo.ensure(next, REF)),
      () => timed(server, k === 0 ? scratch.iso : thin, () => thinPackFetch(thinDir, url)),
    ];
    for (let s = 0; s < sides.length; s++) await sides[(s + k) % sides.length]!();
    const read = await isoRepo.readManifests(next);
    const text = read.files.find((f) => f.file === manifestPath(victim, r.name))?.text ?? '';
    check(text.includes(`# change ${k}`), 'the changed manifest is read from the warm cache');
    const byEngine = (await engineRepo.readManifests(next)).files.find(
      (f) => f.file === manifestPath(victim, r.name),
    );
    check(byEngine?.text.includes(`# change ${k}`) === true, 'the native engine reads the change');
    const { blob } = await git.readBlob({
      fs,
      gitdir: thinDir,
      oid: next,
      filepath: manifestPath(victim, r.name),
    });
    check(Buffer.from(blob).toString('utf8').includes(`# change ${k}`), 'the thin-pack fetch has the change');
  }
  return { n, buildMs, first, changed, thin, readMs, parseMs, engineReadMs };
}

/** Unchanged polls of the largest repository: the agent asks for the ref and finds it where it was. */
async function benchPoll(
  base: string,
  server: GitServer,
  n: number,
  engine: Exclude<EngineKind, 'auto'>,
): Promise<PollResult> {
  const cacheDir = await mkdtemp(join(base, 'poll-'));
  const repo = createGitEngine(
    { url: server.repoUrl(`fleet-${n}`), kind: 'http', ref: 'main', path: 'fleet', auth: null, cacheDir },
    engine,
  );
  const source = new DesiredStateSource(repo, KINDS, () => NOW);
  const first = await source.poll();
  check(first.kind === 'accepted', `first poll accepts the revision (got ${first.kind})`);
  Object.assign(repo.counters, { requests: 0, packRequests: 0, bytesIn: 0 });
  server.clearRequests();
  const ms: number[] = [];
  for (let i = 0; i < POLLS; i++) {
    const t0 = performance.now();
    const o = await source.poll();
    ms.push(performance.now() - t0);
    check(o.kind === 'unchanged', `poll ${i} is unchanged (got ${o.kind})`);
  }
  return {
    engine,
    n,
    ms,
    requests: repo.counters.requests / POLLS,
    bytes: repo.counters.bytesIn / POLLS,
    packRequests: repo.counters.packRequests,
    serverPacks: server.packRequests(),
  };
}

async function runChild(progress: (m: string) => void): Promise<ChildResult> {
  const base = await mkdtemp(join(tmpdir(), 'steward-bench-git-'));
  let server: GitServer | undefined;
  try {
    server = await startGitServer({ projectRoot: base });
    const sizes: SizeResult[] = [];
    for (const n of SIZES) {
      progress(
        `${NAME}: ${n.toLocaleString('en')} manifest files: build, first fetch, changed fetch, read + parse`,
      );
      sizes.push(await benchSize(base, server, n));
    }
    progress(`${NAME}: unchanged polls`);
    const polls: PollResult[] = [];
    for (const engine of ['isomorphic', 'git'] as const)
      polls.push(await benchPoll(base, server, SIZES[SIZES.length - 1]!, engine));
    return { sizes, polls };
  } finally {
    await server?.stop();
    await rm(base, { recursive: true, force: true });
  }
}

const kB = (bytes: number): string =>
  bytes >= 1e6
    ? `${(bytes / 1e6).toFixed(2)} MB`
    : bytes >= 1e3
      ? `${(bytes / 1e3).toFixed(1)} kB`
      : `${bytes} B`;

/** One side of a comparison against plain `git fetch`, as a row with its ratio. */
function comparisonRow(c: string, n: number, cmp: Comparison, side: 'iso' | 'engine', note: string): Row {
  const mine = cmp[side];
  const ms = median(mine.ms);
  const native = median(cmp.native.ms);
  const ratio = ms / native;
  const who = side === 'iso' ? 'isomorphic-git' : 'native engine';
  return {
    benchmark: NAME,
    case: side === 'iso' ? c : `${c}, native engine`,
    n,
    runs: mine.ms.length,
    medianMs: ms,
    minMs: Math.min(...mine.ms),
    maxMs: Math.max(...mine.ms),
    rate: null,
    peakRssMiB: null,
    figure: `${ratio.toFixed(1)}× native (${native.toFixed(0)} ms) · pack ${kB(median(mine.packBytes))} vs ${kB(median(cmp.native.packBytes))}`,
    target: { value: ratio, max: RATIO_TARGET, label: `≤ ${RATIO_TARGET}× native` },
    note: `${note}; ${who} min–max ${Math.min(...mine.ms).toFixed(0)}–${Math.max(...mine.ms).toFixed(0)} ms, native ${Math.min(...cmp.native.ms).toFixed(0)}–${Math.max(...cmp.native.ms).toFixed(0)} ms; requests per fetch ${median(mine.requests)} vs ${median(cmp.native.requests)}`,
  };
}

export const gitSource: Benchmark = {
  name: NAME,
  description:
    'Git source: unchanged poll (requests, bytes), first and changed fetch of 1k/10k manifests vs native git, read + parse',
  async run(ctx) {
    const r = await runInChild<ChildResult>(import.meta.url, ['--child']);
    const rows: Row[] = [];
    for (const p of r.polls)
      rows.push({
        benchmark: NAME,
        case: p.engine === 'git' ? 'unchanged poll, native engine' : 'unchanged poll',
        n: p.n,
        runs: p.ms.length,
        medianMs: median(p.ms),
        minMs: Math.min(...p.ms),
        maxMs: Math.max(...p.ms),
        rate: null,
        peakRssMiB: null,
        figure: `${p.requests} req · ${p.packRequests} pack · ${kB(p.bytes)} per poll`,
        target: { value: p.packRequests + p.serverPacks, max: 0, label: 'no pack' },
        note: `DesiredStateSource.poll() × ${POLLS} with the ref unchanged (${p.engine} engine): one GET info/refs each (client counters; the server saw ${p.serverPacks} upload-pack POSTs)`,
      });
    for (const s of r.sizes) {
      ctx.progress(`${NAME}: ${s.n} files: repository built in ${(s.buildMs / 1000).toFixed(1)} s`);
      for (const side of ['iso', 'engine'] as const) {
        rows.push(
          comparisonRow(
            'first fetch',
            s.n,
            s.first,
            side,
            'ensure() into an empty cache vs git init --bare + git fetch --depth 1',
          ),
        );
        rows.push(
          comparisonRow(
            'changed fetch',
            s.n,
            s.changed,
            side,
            'one manifest changed: ensure(new sha) into the warm cache vs git fetch --depth 1 into the warm native repository',
          ),
        );
      }
      const thin = median(s.thin.ms);
      rows.push({
        benchmark: NAME,
        case: 'changed fetch, thin-pack',
        n: s.n,
        runs: s.thin.ms.length,
        medianMs: thin,
        minMs: Math.min(...s.thin.ms),
        maxMs: Math.max(...s.thin.ms),
        rate: null,
        peakRssMiB: null,
        figure: `${(thin / median(s.changed.native.ms)).toFixed(1)}× native · pack ${kB(median(s.thin.packBytes))}`,
        target: null,
        note: 'what-if, not the agent: the same isomorphic-git fetch with thin-pack added to the capabilities it sends',
      });
      const total = s.readMs.map((x, i) => x + (s.parseMs[i] ?? 0));
      rows.push({
        benchmark: NAME,
        case: 'read + parse',
        n: s.n,
        runs: total.length,
        medianMs: median(total),
        minMs: Math.min(...total),
        maxMs: Math.max(...total),
        rate: s.n / (median(total) / 1000),
        rateUnit: 'files',
        peakRssMiB: null,
        figure: `read ${median(s.readMs).toFixed(0)} · parse ${median(s.parseMs).toFixed(0)} ms`,
        target: null,
        note: 'after a fetch: readManifests(sha) (every blob from the object store) + parseRevision',
      });
      const isoRead = median(s.readMs);
      const engineRead = median(s.engineReadMs);
      rows.push({
        benchmark: NAME,
        case: 'read, native engine',
        n: s.n,
        runs: s.engineReadMs.length,
        medianMs: engineRead,
        minMs: Math.min(...s.engineReadMs),
        maxMs: Math.max(...s.engineReadMs),
        rate: s.n / (engineRead / 1000),
        rateUnit: 'files',
        peakRssMiB: null,
        figure: `isomorphic-git read ${(isoRead / engineRead).toFixed(1)}× this (${isoRead.toFixed(0)} vs ${engineRead.toFixed(0)} ms)`,
        target: null,
        note: 'readManifests(sha): one ls-tree -r -z -l and one cat-file --batch, vs isomorphic-git reading blob by blob',
      });
    }
    return rows;
  },
};

if (isMain(import.meta.url)) {
  if (process.argv[2] !== '--child') {
    process.stderr.write('usage: node --import tsx bench/git-source.ts --child\n');
    process.exit(2);
  }
  reply(await runChild((m) => process.stderr.write(`… ${m}\n`)));
}
