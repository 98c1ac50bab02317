/**
 * `steward plan` is a one-shot command: what it imports is start-up time on every run (issue 12). It plans a
 * source against the providers and must not load the daemon's PostgreSQL client (pg ≈ 120 ms at import: it
 * builds a fetch `Response`, which loads undici), the fleet or the HTTP server.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..', '..');

test('importing the plan command loads neither pg nor fastify, nor ajv (its schemas compile on first use)', () => {
  const probe = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(join(ROOT, 'agent', 'cli', 'plan.ts'))});
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify(loaded));
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const loaded = JSON.parse(r.stdout) as string[];
  assert.ok(
    loaded.some((p) => /[/\\]node_modules[/\\]fast-json-patch[/\\]/.test(p)),
    'the probe sees the CommonJS packages plan loads',
  );
  const heavy = loaded.filter((p) => /[/\\]node_modules[/\\](pg|pg-pool|fastify|pino|ajv)[/\\]/.test(p));
  assert.deepEqual(heavy, []);
});

test('importing the plan command loads neither node:http nor node:https (only a request does)', () => {
  // An ESM import of node:http builds its facade, reading every export: on Node 24 that loads undici
  // (≈ 30 ms at every start). The modules plan imports hold HTTP clients; they load node:http on first use.
  const probe = `
    await import(${JSON.stringify(join(ROOT, 'agent', 'cli', 'plan.ts'))});
    const builtins = process.moduleLoadList.filter((m) => /^NativeModule (http|https|undici)$/.test(m));
    process.stdout.write(JSON.stringify(builtins));
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), []);
});
