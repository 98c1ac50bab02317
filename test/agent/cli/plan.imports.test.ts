/**
 * `steward plan` is a one-shot command: what it imports is start-up time on every run (issue 12). It plans a
 * source against the providers and must not load the daemon's PostgreSQL client (pg ≈ 120 ms at import: it
 * builds a fetch `Response`, which loads undici), the fleet or the HTTP server.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setup } from '../../../bench/plan-floor.js';
import { FileStateStore } from '../../../agent/state/file-store.js';
import { freshState } from '../../../agent/state/types.js';

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

for (const drifted of [false, true])
  test(`steward plan of a ${drifted ? 'drifted' : 'converged'} local repository loads neither node:crypto nor worker_threads (the bundle, as run)`, () => {
    // An ESM import of a built-in builds its facade and reads every export: node:crypto's loads every cipher
    // and WebCrypto, node:util's loads worker_threads. On Node 24 those were ≈ 10 ms of a 150 ms plan (issue 12,
    // start-up). Nor does a drift's display need node:crypto: its digests are hashed in JavaScript
    // (agent/patch-view.ts), which costs less than loading it. The modules plan imports reach the built-ins
    // through core/builtins.ts, on first use.
    const f = setup(3);
    try {
      // setup() made one drift; reverted, nothing is left to show
      if (!drifted) writeFileSync(join(f.root, 'f', 'r00000.conf'), 'r00000\nline two\n');
      const out = join(f.dir, 'modules.json');
      const preload = join(f.dir, 'preload.mjs');
      writeFileSync(
        preload,
        `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.moduleLoadList)));`,
      );
      const r = spawnSync(
        process.execPath,
        ['--import', preload, join(ROOT, 'bin', 'steward.js'), 'plan', '-c', f.config],
        { cwd: f.dir, encoding: 'utf8' },
      );
      if (drifted)
        assert.match(r.stdout, /spec\.content: sha256:[0-9a-f]{12} \(\d+ bytes\) → sha256:[0-9a-f]{12}/);
      else assert.equal(r.status, 0, `plan: nothing to change: ${r.stdout}${r.stderr}`);
      const loaded = JSON.parse(readFileSync(out, 'utf8')) as string[];
      assert.ok(loaded.includes('NativeModule child_process'), 'the probe sees the built-ins plan loads');
      const unneeded = loaded.filter((m) => /^NativeModule (crypto|worker_threads|http|https)$/.test(m));
      assert.deepEqual(unneeded, []);
    } finally {
      rmSync(f.dir, { recursive: true, force: true });
    }
  });

test("steward plan beside an agent's state file loads no ajv (the bundle, as run): the state's schema is precompiled", async () => {
  // Compiling the state schema at run time loaded ajv and cost ≈ 80 ms of such a plan on Node 24 (issue 12).
  const f = setup(3);
  try {
    const store = new FileStateStore(join(f.dir, 'state'));
    await store.save(freshState());
    const out = join(f.dir, 'required.json');
    const preload = join(f.dir, 'preload.mjs');
    writeFileSync(
      preload,
      `import { writeFileSync } from 'node:fs';\nimport { createRequire } from 'node:module';\ncreateRequire(${JSON.stringify(join(ROOT, 'package.json'))})('fast-deep-equal');\nprocess.on('exit', () => writeFileSync(${JSON.stringify(out)}, JSON.stringify(Object.keys(createRequire(import.meta.url).cache))));`,
    );
    const r = spawnSync(
      process.execPath,
      ['--import', preload, join(ROOT, 'bin', 'steward.js'), 'plan', '-c', f.config],
      { cwd: f.dir, encoding: 'utf8' },
    );
    assert.match(r.stdout, /^state: .*state\.json \(read only\)/m, `${r.stdout}${r.stderr}`);
    const required = JSON.parse(readFileSync(out, 'utf8')) as string[];
    assert.ok(
      required.some((p) => /[/\\]node_modules[/\\]fast-deep-equal[/\\]/.test(p)),
      'the probe sees what is required (fast-deep-equal, by the probe itself)',
    );
    assert.deepEqual(
      required.filter((p) => /[/\\]node_modules[/\\]ajv[/\\]/.test(p)),
      [],
    );
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});
