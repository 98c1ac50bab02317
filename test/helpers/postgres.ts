/**
 * Test helper: a REAL PostgreSQL server (Debian's postgresql, `initdb` +
 * `postgres`) in a temporary directory, for the fleet tests.
 *
 * - It listens on a unix socket in its own directory only
 *   (`listen_addresses=''`), or also on a free loopback port with `tcp: true`.
 * - PostgreSQL refuses to run as root: when the tests run as root, the data
 *   and socket directories are given to `nobody` and the server runs as it.
 * - `fsync=off`: commits still reach the OS before they return (a killed
 *   server loses nothing), only a host crash could; these are tests.
 * - Readiness is the server's own "ready to accept connections" line, then a
 *   connection; no sleeps. `stop()` is a fast shutdown, `kill()` a SIGKILL,
 *   `start()` brings the same data directory back. `destroy()` stops it and
 *   removes the directory; an exit handler kills it if a test file crashes.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { childrenOf, runningAfterKill } from './process-group.js';

export interface PgServer {
  /** A connection URL for the test database (`steward`), user `steward`, no password (trust auth). */
  url: string;
  /** The same for another database on this server (created with `createDatabase`). */
  urlFor(database: string): string;
  /** The directory holding the unix socket. */
  socketDir: string;
  /** The TCP port on 127.0.0.1 with `tcp: true`, else the socket's port number. */
  port: number;
  running(): boolean;
  createDatabase(name: string): Promise<void>;
  /** Runs one statement as the superuser on the test database. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Fast shutdown (SIGINT); resolves once the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL, like a crashed host; resolves once the process has exited. */
  kill(): Promise<void>;
  /** Starts the server again on the same data directory and port. */
  start(): Promise<void>;
  /** Stops it (if running) and removes its directory. */
  destroy(): Promise<void>;
}

export interface PgServerOptions {
  /** Listen on 127.0.0.1 as well (a free port). Default: the unix socket only. */
  tcp?: boolean;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
}

const READY_TIMEOUT_MS = 30_000;
const NOBODY = 65534;

/** The directory of the PostgreSQL server binaries (where `initdb` really lives). */
export function postgresBinDir(): string {
  try {
    const initdb = execFileSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).trim();
    if (initdb) return dirname(realpathSync(initdb));
  } catch {
    // not on the PATH: Debian keeps it in a versioned directory
  }
  const base = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
  } catch {
    // no PostgreSQL at all
  }
  if (versions.length === 0)
    throw new Error(
      'PostgreSQL is not installed: the fleet tests need a real server. Run npm test (it installs the Debian package postgresql when root) or "sudo apt-get install postgresql".',
    );
  return join(base, versions[0]!, 'bin');
}

/** A free TCP port on 127.0.0.1 (for servers the tests start). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
/** Signals the server's process group: the postmaster alone (its children each call setsid()); see signal(). */
function killGroup(p: ChildProcess, sig: NodeJS.Signals): void {
  try {
    process.kill(-p.pid!, sig);
  } catch {
    // already gone
  }
}
process.once('exit', () => {
  for (const p of live) killGroup(p, 'SIGKILL');
});

export async function startPostgres(opts: PgServerOptions = {}): Promise<PgServer> {
  const bin = postgresBinDir();
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'stw-pg-'));
  const data = join(dir, 'data');
  const sock = join(dir, 'sock');
  mkdirSync(data, { mode: 0o700 });
  mkdirSync(sock, { mode: 0o700 });
  const owner = asRoot ? { uid: NOBODY, gid: NOBODY } : {};
  if (asRoot) {
    chmodSync(dir, 0o755);
    for (const d of [dir, data, sock]) chownSync(d, NOBODY, NOBODY);
  }
  execFileSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'steward', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
    { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir, ...owner },
  );
  const port = opts.tcp ? await freePort() : 5432;
  const settings: Record<string, string> = {
    listen_addresses: opts.tcp ? '127.0.0.1' : '',
    unix_socket_directories: sock,
    fsync: 'off',
    full_page_writes: 'off',
    max_connections: '200',
    ...opts.settings,
  };
  const args = [
    '-D',
    data,
    '-p',
    String(port),
    ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
  ];

  let proc: ChildProcess | null = null;
  const urlFor = (database: string) =>
    opts.tcp
      ? `postgres://steward@127.0.0.1:${port}/${database}`
      : `postgres://steward@localhost/${database}?host=${encodeURIComponent(sock)}&port=${port}`;
  const connect = (database = 'steward') =>
    new pg.Client(
      opts.tcp ? { connectionString: urlFor(database) } : { host: sock, port, user: 'steward', database },
    );

  async function start(): Promise<void> {
    if (proc) throw new Error('postgres is already running');
    const p = spawn(join(bin, 'postgres'), args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      cwd: dir,
      detached: true,
      ...owner,
    });
    proc = p;
    live.add(p);
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(`postgres did not become ready within ${READY_TIMEOUT_MS} ms:\n${log.slice(-2000)}`),
        );
      }, READY_TIMEOUT_MS);
      p.stderr!.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        if (log.includes('ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      p.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`postgres exited (${code ?? signal}) before it was ready:\n${log.slice(-2000)}`));
      });
    });
    p.stderr!.resume();
    p.once('exit', () => {
      live.delete(p);
      if (proc === p) proc = null;
    });
  }

  async function signal(sig: NodeJS.Signals): Promise<void> {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) {
      proc = null;
      return;
    }
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    if (sig !== 'SIGKILL') {
      p.kill(sig);
      await exited;
      proc = null;
      return;
    }
    // A crash takes every server process at once. Each backend and auxiliary process calls setsid(), so
    // the postmaster's group holds only the postmaster: a backend left alive answers its client until it
    // notices the postmaster's death. The postmaster is stopped first (it forks nothing more), its children
    // read from /proc and killed with it, and kill() returns once none of them runs.
    try {
      process.kill(p.pid!, 'SIGSTOP');
    } catch {
      // already gone
    }
    const children = await childrenOf(p.pid!);
    for (const c of children) {
      try {
        process.kill(c, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    killGroup(p, 'SIGKILL');
    await exited;
    for (const c of children)
      if (await runningAfterKill(c)) throw new Error(`postgres process ${c} outlived SIGKILL`);
    proc = null;
  }

  async function query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    const c = connect();
    await c.connect();
    try {
      return (await c.query<R>(sql, params)).rows;
    } finally {
      await c.end();
    }
  }

  await start();
  const admin = connect('postgres');
  await admin.connect();
  try {
    await admin.query('CREATE DATABASE steward');
  } finally {
    await admin.end();
  }

  return {
    url: urlFor('steward'),
    urlFor,
    socketDir: sock,
    port,
    running: () => proc !== null,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
      const c = connect('postgres');
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
    },
    query,
    stop: () => signal('SIGINT'),
    kill: () => signal('SIGKILL'),
    start,
    async destroy() {
      await signal('SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
