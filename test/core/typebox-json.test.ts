/**
 * The CLI bundle builds steward's schemas with core/typebox-json.ts in place of `typebox/type` (issue 12,
 * start-up). Every schema module is bundled here with the bundle's own plugin and its exports compared with the
 * same modules built by TypeBox: the same JSON, key for key and in the same order (a precompiled validator is
 * matched to its schema's text), and the same defaults read off them.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import * as Json from '../../core/typebox-json.js';
import * as Type from 'typebox/type';
import { typeboxAsJson } from '../../scripts/typebox-json-plugin.mjs';

const ROOT = join(import.meta.dirname, '..', '..');
const MODULES = [
  'agent/config/schema.ts',
  'agent/config.ts',
  'agent/state/types.ts',
  'agent/admin/schemas.ts',
  'policies/guardrail-config.ts',
  'policies/types.ts',
  'providers/config.ts',
];

test("every steward schema built without TypeBox is TypeBox's JSON, and gives the same defaults", async (t) => {
  // Inside the project, so that the bundle's external packages resolve from its node_modules.
  const cache = join(ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, 'steward-typebox-json-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const entry = MODULES.map((m, i) => `export * as m${i} from ${JSON.stringify(join(ROOT, m))};`).join('\n');
  const out = join(dir, 'schemas.mjs');
  await build({
    stdin: { contents: entry, resolveDir: ROOT, loader: 'ts' },
    bundle: true,
    format: 'esm',
    platform: 'node',
    packages: 'external',
    outfile: out,
    logLevel: 'error',
    plugins: [typeboxAsJson(join(ROOT, 'core', 'typebox-json.ts'))],
  });
  const bundled = (await import(pathToFileURL(out).href)) as Record<string, Record<string, unknown>>;
  let compared = 0;
  for (const [i, m] of MODULES.entries()) {
    const real = (await import(join(ROOT, m))) as Record<string, unknown>;
    const json = bundled[`m${i}`]!;
    assert.deepEqual(Object.keys(json).sort(), Object.keys(real).sort(), `${m}: the same exports`);
    for (const [name, value] of Object.entries(real)) {
      if (typeof value !== 'object' || value === null) continue;
      assert.equal(JSON.stringify(json[name]), JSON.stringify(value), `${m}: ${name}`);
      compared++;
    }
  }
  assert.ok(compared >= 20, `${compared} schemas and defaults compared`);
});

test('each builder writes what TypeBox writes, options and optional keys included', () => {
  const same = (a: unknown, b: unknown) => assert.equal(JSON.stringify(a), JSON.stringify(b));
  same(Json.Object({}), Type.Object({}));
  same(
    Json.Object(
      { a: Json.String({ format: 'x' }), b: Json.Optional(Json.Number({ default: 1 })) },
      { additionalProperties: false },
    ),
    Type.Object(
      { a: Type.String({ format: 'x' }), b: Type.Optional(Type.Number({ default: 1 })) },
      { additionalProperties: false },
    ),
  );
  same(Json.Object({ a: Json.Optional(Json.Boolean()) }), Type.Object({ a: Type.Optional(Type.Boolean()) }));
  same(
    Json.Union([Json.Literal('a'), Json.Literal(2), Json.Literal(true), Json.Null()], { default: 'a' }),
    Type.Union([Type.Literal('a'), Type.Literal(2), Type.Literal(true), Type.Null()], { default: 'a' }),
  );
  same(
    Json.Array(Json.Integer({ minimum: 0 }), { minItems: 1 }),
    Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }),
  );
  same(
    Json.Record(Json.String(), Json.Unknown({ description: 'd' }), { default: {} }),
    Type.Record(Type.String(), Type.Unknown({ description: 'd' }), { default: {} }),
  );
  same(Json.Enum(['x', 'y'], { default: 'x' }), Type.Enum(['x', 'y'], { default: 'x' }));
  assert.throws(
    () => Json.Record(Json.String({ pattern: '^a' }), Json.String()),
    /Type\.String\(\) keys only/,
  );
});
