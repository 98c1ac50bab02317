/**
 * A real Prometheus server (Debian's `/usr/bin/prometheus`) for tests: on a
 * free loopback port, with its TSDB in a temp directory, scraping itself every
 * second so that queries have data. `stop()` (call it from `after`) ends the
 * process and removes the directory; nothing is left running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PROMETHEUS_BIN = process.env['PROMETHEUS_BIN'] ?? '/usr/bin/prometheus';

export interface PrometheusServer {
  /** `http://127.0.0.1:<port>`: the base URL a prometheus check takes. */
  url: string;
  /** Polls an instant query until it returns a non-empty result (the first self-scrape landed). */
  waitForData(query: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** A port that was free a moment ago (Prometheus binds it itself; a lost race is retried). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

/** Resolves once Prometheus logs that it serves; rejects with its log when it exits first. */
function ready(child: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(
      () => fail(new Error(`prometheus not ready within ${timeoutMs} ms:\n${log}`)),
      timeoutMs,
    );
    const onData = (d: Buffer) => {
      log += d.toString();
      if (log.includes('Server is ready to receive web requests')) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code: number | null) =>
      fail(new Error(`prometheus exited (${code}) before it was ready:\n${log}`));
    const onError = (e: Error) =>
      fail(
        new Error(
          `cannot start ${PROMETHEUS_BIN} (${e.message}): scripts/test-prerequisites.mjs installs it`,
        ),
      );
    const cleanup = () => {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    const fail = (e: Error) => {
      cleanup();
      reject(e);
    };
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

export async function startPrometheus(): Promise<PrometheusServer> {
  const dir = await mkdtemp(join(tmpdir(), 'steward-prom-'));
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const config = join(dir, 'prometheus.yml');
    await writeFile(
      config,
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        'scrape_configs:',
        `  - { job_name: prom, static_configs: [{ targets: ["127.0.0.1:${port}"] }] }`,
        '',
      ].join('\n'),
    );
    const child = spawn(
      PROMETHEUS_BIN,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=info',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    // a process that never started (ENOENT) reports an error and no exit
    const exited = new Promise<void>((r) => {
      child.once('exit', () => r());
      child.once('error', () => r());
    });
    try {
      await ready(child, 30_000);
    } catch (e) {
      child.kill('SIGKILL');
      await exited;
      if (attempt < 3 && String(e).includes('address already in use')) continue;
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
    child.stderr?.resume(); // keep draining its log so it never blocks on a full pipe
    const url = `http://127.0.0.1:${port}`;
    let stopped: Promise<void> | null = null;
    return {
      url,
      async waitForData(query, timeoutMs = 30_000) {
        const end = Date.now() + timeoutMs;
        for (;;) {
          const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(query)}`);
          const body = (await res.json()) as { data?: { result?: unknown[] } };
          if ((body.data?.result?.length ?? 0) > 0) return;
          if (Date.now() > end) throw new Error(`prometheus has no data for ${query} after ${timeoutMs} ms`);
          await new Promise((r) => setTimeout(r, 100)); // the next scrape is at most 1 s away
        }
      },
      stop() {
        stopped ??= (async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited;
          await rm(dir, { recursive: true, force: true });
        })();
        return stopped;
      },
    };
  }
}
