#!/usr/bin/env node
import module from 'node:module';

// Node 22.1+: cache compiled code between runs (start-up matters for plan/validate). A no-op elsewhere.
module.enableCompileCache?.();
const { main } = await import('../dist/agent/cli.js');
process.exitCode = await main(process.argv.slice(2));
