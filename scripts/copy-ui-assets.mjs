// Part of `npm run build`: tsc compiles only TypeScript, so the dashboard's static files
// (agent/admin/ui/) are copied next to the compiled agent/admin/ui.js, where it looks for them.
import { cpSync, rmSync } from 'node:fs';

const from = new URL('../agent/admin/ui/', import.meta.url);
const to = new URL('../dist/agent/admin/ui/', import.meta.url);
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true });
