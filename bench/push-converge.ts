/**
 * Push-to-converge latency: from `git push` to the change on disk.
 *
 * A whole daemon (agent + admin API on a loopback port, the e2e test
 * harness) reads its desired state from a real smart-HTTP server
 * (`git http-backend`, the test helper) and manages a fleet of File
 * resources. `source.interval` and `reconcile.interval` are 1 h, so only the
 * push webhook can explain a fast convergence. For each of {@link PUSHES}
 * pushes: one resource's content is changed and committed (not timed), then
 * the clock starts; real `git push` over HTTP (receive-pack), the signed push
 * webhook (`POST /v1/hooks/git`, GitHub's X-Hub-Signature-256), and a bounded
 * setImmediate loop reads the managed file until it has the new content.
 *
 * The figure is push start → new content on disk. It is split into
 *  - push: `git push` until it exits;
 *  - → accepted: from there until the agent has accepted the new revision
 *    (webhook request, ref request, fetch, read, parse, validate);
 *  - → on disk: from there until the file has the new content (the cycle up to
 *    the apply: observe, diff, decide, write).
 *
 * The managed files are written before the agent starts, with the content
 * Git has, so its first cycle finds the fleet converged (creating 10k files
 * with fsync would take longer than the whole benchmark should).
 *
 * Guardrails are the defaults except where they would stop the measurement,
 * not the path being measured: `soak.observeCycles: 0` (the default, 1,
 * holds every new revision for one observe-only cycle, and with a 1 h
 * interval that cycle never comes), and a rate limit of 6000/min (the
 * default bucket, 10 then 1 per second, would hold the 11th of 20 pushes
 * made within a few seconds until a cycle that never comes).
 */
import { createHmac } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createTestRepo, git as gitCli } from '../test/helpers/git-repo.js';
import { type DaemonHarness, startDaemonHarness } from '../test/helpers/daemon.js';
import { type GitServer, startGitServer } from '../test/helpers/git-server.js';
import type { DesiredResource } from '../providers/types.js';
import { isMain, median, reply, runInChild } from './harness.js';
import { buildFleet, yamlDoc } from './synthetic.js';
import type { Benchmark, Row } from './types.js';

const NAME = 'push-to-converge';
const PUSHES = 20;
const SIZES = [100, 1_000, 10_000] as const;
const DOCS_PER_FILE = 10;
/** Issue 4: push → converged within 1 s; issue 12: within 500 ms at 10k Files. */
const targetMs = (n: number): number => (n >= 10_000 ? 500 : 1_000);
/** A push that has not converged after this long fails the benchmark. */
const GIVE_UP_MS = 30_000;
const GUARDRAILS = ['soak: { observeCycles: 0 }', 'rateLimit: { actionsPerMinute: 6000, burst: 100 }'].join(
  '\n',
);

interface Push {
  totalMs: number;
  pushMs: number;
  acceptedMs: number;
  onDiskMs: number;
  cycleMs: number;
}

interface ChildResult {
  n: number;
  pushes: Push[];
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`push-to-converge benchmark: ${what}`);
}

const sleepTick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Waits (bounded) until `file` holds `content`. */
async function waitForContent(file: string, content: string, since: number): Promise<void> {
  while ((await readFile(file, 'utf8').catch(() => null)) !== content) {
    check(
      performance.now() - since < GIVE_UP_MS,
      `${file} did not get the pushed content within ${GIVE_UP_MS} ms`,
    );
    await sleepTick();
  }
}

const fileOf = (i: number): string =>
  `fleet/part-${String(Math.floor(i / DOCS_PER_FILE)).padStart(3, '0')}.yaml`;

async function writeManifest(
  workDir: string,
  resources: readonly DesiredResource[],
  i: number,
): Promise<void> {
  const first = Math.floor(i / DOCS_PER_FILE) * DOCS_PER_FILE;
  const docs = resources.slice(first, first + DOCS_PER_FILE).map(yamlDoc);
  await writeFile(join(workDir, fileOf(i)), docs.join('---\n'));
}

async function runChild(n: number): Promise<ChildResult> {
  const base = await mkdtemp(join(tmpdir(), 'steward-bench-push-'));
  let server: GitServer | undefined;
  let d: DaemonHarness | undefined;
  try {
    server = await startGitServer({ projectRoot: base });
    const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
    const resources = buildFleet(n).resources;
    await mkdir(join(repo.workDir, 'fleet'), { recursive: true });
    for (let i = 0; i < n; i += DOCS_PER_FILE) await writeManifest(repo.workDir, resources, i);
    await repo.commitAndPush('fleet');
    const url = server.repoUrl('desired');
    d = await startDaemonHarness({ sourceUrl: url, guardrails: GUARDRAILS, mode: 'enforce', manual: true });
    const daemon = d;
    for (const r of resources) {
      const file = join(daemon.root, String(r.spec['path']));
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, String(r.spec['content']), {
        mode: Number.parseInt(String(r.spec['mode'] ?? '0644'), 8),
      });
    }
    await daemon.daemon.agent.start();
    await daemon.daemon.agent.idle();
    const first = daemon.daemon.agent.lastCycle;
    check(
      first?.managed === n && first.drifted === 0 && first.applied === 0,
      `the first cycle finds ${n} converged resources (got ${JSON.stringify(first && { managed: first.managed, drifted: first.drifted })})`,
    );

    const acceptedAt = new Map<string, number>();
    const cycleMs = new Map<string, number>();
    daemon.daemon.agent.onPollOutcome((o) => {
      if (o.kind === 'accepted') acceptedAt.set(o.revision.sha, performance.now());
    });
    daemon.daemon.agent.onCycle((r) => cycleMs.set(r.revision, r.durationMs));
    const sign = (body: string): string =>
      `sha256=${createHmac('sha256', daemon.webhookSecret).update(body).digest('hex')}`;

    const pushes: Push[] = [];
    for (let p = 0; p < PUSHES; p++) {
      const i = (p * 37 + 11) % n;
      const r = resources[i]!;
      const content = `${String(r.spec['content'])}# push ${p}\n`;
      resources[i] = { ...r, spec: { ...r.spec, content } };
      await writeManifest(repo.workDir, resources, i);
      const sha = await repo.commit(`push ${p}`);

      const t0 = performance.now();
      await gitCli(repo.workDir, ['push', '--quiet', url, 'HEAD:refs/heads/main']);
      const pushed = performance.now();
      const body = JSON.stringify({ ref: 'refs/heads/main', after: sha });
      const hook = await daemon.req('POST', '/v1/hooks/git', {
        raw: body,
        auth: false,
        headers: { 'x-github-event': 'push', 'x-hub-signature-256': sign(body) },
      });
      check(
        hook.status === 202 && (hook.json as { accepted?: boolean }).accepted === true,
        `webhook: ${hook.text}`,
      );
      await waitForContent(join(daemon.root, String(r.spec['path'])), content, t0);
      const onDisk = performance.now();
      await daemon.daemon.agent.idle();
      const accepted = acceptedAt.get(sha);
      check(accepted !== undefined, `revision ${sha} was accepted`);
      pushes.push({
        totalMs: onDisk - t0,
        pushMs: pushed - t0,
        acceptedMs: accepted! - pushed,
        onDiskMs: onDisk - accepted!,
        cycleMs: cycleMs.get(sha) ?? Number.NaN,
      });
    }
    check(daemon.daemon.agent.currentState.freeze === null, 'the agent is not frozen');
    return { n, pushes };
  } finally {
    await d?.stop();
    await server?.stop();
    await rm(base, { recursive: true, force: true });
  }
}

/** The value at quantile q (nearest rank). */
function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? Number.NaN;
}

export const pushConverge: Benchmark = {
  name: NAME,
  description: `git push → webhook → file changed on disk, median over ${PUSHES} pushes (daemon, smart-HTTP server)`,
  async run(ctx) {
    const rows: Row[] = [];
    for (const n of SIZES) {
      ctx.progress(`${NAME}: ${PUSHES} pushes, fleet of ${n.toLocaleString('en')} files`);
      const r = await runInChild<ChildResult>(import.meta.url, ['--child', String(n)]);
      const total = r.pushes.map((p) => p.totalMs);
      const part = (k: keyof Push): string => median(r.pushes.map((p) => p[k])).toFixed(0);
      rows.push({
        benchmark: NAME,
        case: 'push → on disk',
        n,
        runs: total.length,
        medianMs: median(total),
        minMs: Math.min(...total),
        maxMs: Math.max(...total),
        rate: null,
        peakRssMiB: null,
        figure: `p90 ${quantile(total, 0.9).toFixed(0)} · push ${part('pushMs')} + accepted ${part('acceptedMs')} + on disk ${part('onDiskMs')}`,
        target: { maxMs: targetMs(n) },
        note:
          `N = managed Files (${DOCS_PER_FILE} per manifest); medians of the parts: git push ${part('pushMs')} ms, ` +
          `push done → revision accepted (webhook, ref request, fetch, read, parse) ${part('acceptedMs')} ms, ` +
          `accepted → file on disk (cycle up to the apply) ${part('onDiskMs')} ms; whole cycle ${part('cycleMs')} ms. ` +
          'soak.observeCycles 0, intervals 1 h',
      });
    }
    return rows;
  },
};

if (isMain(import.meta.url)) {
  const [flag, n] = process.argv.slice(2);
  if (flag !== '--child' || !Number.isSafeInteger(Number(n)) || Number(n) < 1) {
    process.stderr.write('usage: node --import tsx bench/push-converge.ts --child N\n');
    process.exit(2);
  }
  reply(await runChild(Number(n)));
}
