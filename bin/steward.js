#!/usr/bin/env node
// The `steward` command. npm's global install and npx reach it through symlinks on PATH; Node
// resolves them, so import.meta.url (and ../dist below) is the installation's, not the symlink's.
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import module, { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

// Node 22.1+: cache compiled code between runs (start-up matters for plan/validate). A no-op elsewhere.
module.enableCompileCache?.();
// The reader went away (`steward plan | head`): there is no one left to tell; stop quietly, as Unix tools do.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
const cli = new URL('../dist/agent/cli.js', import.meta.url);
if (!existsSync(cli)) {
  const home = dirname(dirname(fileURLToPath(import.meta.url)));
  process.stderr.write(
    `steward: ${fileURLToPath(cli)} is missing: run npm ci (or npm run build) in ${home}\n`,
  );
  process.exit(1);
}

/**
 * dist/bundle/cli.js (scripts/bundle-cli.mjs, run by `npm run build`): the same code in a few files, so a
 * one-shot command starts faster. Used only while it is not older than any dist/ module it was made from;
 * otherwise (a `tsc` alone since, or no bundle) dist/agent/cli.js runs as it is.
 */
function bundled() {
  try {
    // Paths as strings, not a URL per input: 114 stats, ≈ 1.6 → 0.9 ms of every start on Node 24.
    const home = fileURLToPath(new URL('..', import.meta.url));
    const list = `${home}dist/bundle/inputs.json`;
    const built = statSync(list).mtimeMs;
    const inputs = JSON.parse(readFileSync(list, 'utf8'));
    for (const p of inputs) if (statSync(home + p).mtimeMs > built) return null;
    return new URL('../dist/bundle/cli.js', import.meta.url);
  } catch {
    return null;
  }
}

/**
 * The commands that start, read and exit, and whose start-up is most of their time: they run the one-file
 * bundle (dist/bundle/one-shot.cjs, scripts/bundle-cli.mjs) as a vm.Script with V8's code cache of the
 * functions the same command ran the last time. Node's own compile cache keeps a module's top level only,
 * so every function `steward plan` calls was compiled again at every start (issue 12: ≈ 18 ms of a plan of
 * 3,000 Files on Node 24, ≈ 43 ms on Node 20). The daemon and the other commands run the chunks (dist/bundle/cli.js) as before.
 */
const ONE_SHOT = new Set(['plan', 'validate']);

/** dist/bundle/one-shot.json: the one-file bundle and its build's id, or null (an older build). */
function oneShotBundle() {
  try {
    const home = fileURLToPath(new URL('..', import.meta.url));
    const { file, id } = JSON.parse(readFileSync(`${home}dist/bundle/one-shot.json`, 'utf8'));
    return { path: `${home}dist/bundle/${file}`, id };
  } catch {
    return null;
  }
}

/**
 * Where the code caches are kept: $STEWARD_CODE_CACHE (a directory; `off` for none), else
 * steward-code-cache-<uid> in the temporary directory. What is read from it runs as code, so it is used only
 * as a directory of this user's (not a symlink) that no one else can write; otherwise there is no cache,
 * and the command runs the same, compiling as it goes. The directory is held open and checked on that
 * handle, and every name in it is reached through the handle (`/proc/self/fd/N/name`): swapping it for
 * another directory after the check changes nothing.
 */
function openCodeCacheDir() {
  const asked = process.env.STEWARD_CODE_CACHE;
  if (asked === 'off' || asked === '0') return null;
  const uid = process.getuid?.();
  if (uid === undefined) return null;
  const dir = asked || join(tmpdir(), `steward-code-cache-${uid}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if (e.code !== 'EEXIST') return null;
  }
  let fd;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  const st = fstatSync(fd);
  if (!usersOwn(st) || (st.mode & 0o700) !== 0o700) {
    closeSync(fd);
    return null;
  }
  return { fd, at: (name) => `/proc/self/fd/${fd}/${name}` };
}

/**
 * Runs `main` of the one-file bundle in this context, with the code cache of the command's last run when
 * there is one that V8 accepts. The cache is named after the command, the runtime and the bundle (its
 * build's id, size, mtime, device, inode and ctime: V8 itself checks a cache against the source's length
 * only). After a run that
 * had none (or one V8 refused) and ended normally, the functions compiled by then are written as the new
 * cache, atomically; a failed or `--help` run leaves none, so that it cannot stand in for a real one.
 */
async function runOneShot(bundle, argv) {
  const fd = openSync(bundle.path, constants.O_RDONLY);
  let source;
  let st;
  try {
    st = fstatSync(fd, { bigint: true });
    source = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  const dir = openCodeCacheDir();
  // Per install (the bundle's path) and per set of runtime flags (V8 refuses a cache made under other flags),
  // so that two installs side by side, or runs with and without NODE_OPTIONS, do not replace each other's.
  const flags = `${bundle.path}\0${process.execArgv.join(' ')}\0${process.env.NODE_OPTIONS ?? ''}`;
  const prefix = `${argv[0]}-${fnv1a(flags)}-${process.version}-${process.arch}-`;
  // ctime too: an mtime is easily carried over (cp -a, rsync -t, tar), a ctime cannot be set back.
  const name = `${prefix}${bundle.id}-${st.size}-${st.mtimeMs}-${st.dev}-${st.ino}-${st.ctimeNs}.v8`;
  let cached;
  if (dir)
    try {
      cached = readCodeCache(dir.at(name));
    } catch {
      cached = undefined;
    }
  // The wrapper a CommonJS module gets, plus the loader's import() (core/dynamic-import.ts); on the first line,
  // so that stack traces keep the bundle's line numbers.
  const script = new vm.Script(
    `(function (exports, require, module, __filename, __dirname, __stewardImport) {${source}\n})`,
    { filename: bundle.path, cachedData: cached },
  );
  const mod = { exports: {} };
  script.runInThisContext()(
    mod.exports,
    createRequire(bundle.path),
    mod,
    bundle.path,
    dirname(bundle.path),
    (specifier) => import(specifier),
  );
  const code = await mod.exports.main(argv);
  const normal = (code === 0 || code === 2) && !argv.includes('--help') && !argv.includes('-h');
  if (dir && normal && (cached === undefined || script.cachedDataRejected))
    saveCodeCache(dir, prefix, name, script.createCachedData());
  if (dir) closeSync(dir.fd);
  return code;
}

/** Owned by the user steward runs as, and writable by no one else: the one rule for the directory and its files. */
function usersOwn(st) {
  return st.uid === process.getuid() && (st.mode & 0o022) === 0;
}

/**
 * The cache file, only when it is a regular file of this user's, with one link, writable by no one else and of
 * a sane size (O_NONBLOCK: a FIFO planted under the name cannot hang the start); else undefined.
 */
function readCodeCache(path) {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || !usersOwn(st) || st.nlink !== 1) return undefined;
    if (st.size > 64 * 1024 * 1024) return undefined;
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A 32-bit FNV-1a hash of a string, in hex: a short, stable name for a path (no node:crypto to load). */
function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** Writes a code cache atomically (a new file renamed over), and drops the same command's caches of older builds. */
function saveCodeCache(dir, prefix, name, data) {
  const tmp = `.${name}.${process.pid}.tmp`;
  let created = false;
  try {
    writeFileSync(dir.at(tmp), data, { mode: 0o600, flag: 'wx' });
    created = true;
    renameSync(dir.at(tmp), dir.at(name));
    created = false;
    for (const f of readdirSync(dir.at('.')))
      if (f.startsWith(prefix) && f !== name) rmSync(dir.at(f), { force: true });
  } catch {
    // A cache is an optimisation: a full disk or a read-only /tmp costs the next start its compile, nothing else.
    // Only this run's own temp file is removed (never another process's of the same pid in another namespace).
    if (created)
      try {
        rmSync(dir.at(tmp), { force: true });
      } catch {
        // nothing more to do
      }
  }
}

const argv = process.argv.slice(2);
const bundle = bundled();
const oneShot = bundle && ONE_SHOT.has(argv[0]) ? oneShotBundle() : null;
if (oneShot) process.exitCode = await runOneShot(oneShot, argv);
else {
  const { main } = await import((bundle ?? cli).href);
  process.exitCode = await main(argv);
}
