import { readFileSync } from 'node:fs';

/** The package version, read once from package.json (two levels up from agent/ or dist/agent/). */
function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const p = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (p.name === 'steward' && p.version) return p.version;
    } catch {}
  }
  return '0.0.0-unknown';
}

export const VERSION = readVersion();
