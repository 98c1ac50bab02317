#!/usr/bin/env node
// The `steward` command. npm's global install and npx reach it through symlinks on PATH; Node
// resolves them, so import.meta.url (and ../dist below) is the installation's, not the symlink's.
import { existsSync, readFileSync, statSync } from 'node:fs';
import module from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

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
const { main } = await import((bundled() ?? cli).href);

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
process.exitCode = await main(process.argv.slice(2));
