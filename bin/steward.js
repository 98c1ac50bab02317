#!/usr/bin/env node
// The `steward` command. npm's global install and npx reach it through symlinks on PATH; Node
// resolves them, so import.meta.url (and ../dist below) is the installation's, not the symlink's.
import { existsSync } from 'node:fs';
import module from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

// Node 22.1+: cache compiled code between runs (start-up matters for plan/validate). A no-op elsewhere.
module.enableCompileCache?.();
const cli = new URL('../dist/agent/cli.js', import.meta.url);
if (!existsSync(cli)) {
  const home = dirname(dirname(fileURLToPath(import.meta.url)));
  process.stderr.write(
    `steward: ${fileURLToPath(cli)} is missing: run npm ci (or npm run build) in ${home}\n`,
  );
  process.exit(1);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2));
