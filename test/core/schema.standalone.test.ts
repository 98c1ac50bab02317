/**
 * The build's precompiled config validator (ajv standalone code, issue 12's start-up work) checks exactly as
 * the validator compiled at run time: the same verdict, the same defaults filled in, the same messages.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import vm from 'node:vm';
import type { ValidateFunction } from 'ajv';
import type { TSchema } from 'typebox';
import { CONFIG_FORMATS, ConfigSchema } from '../../agent/config/schema.js';
import { freshState, PersistedStateSchema } from '../../agent/state/types.js';
import {
  ajvFormats,
  checkerOf,
  compileSchema,
  precompiledChecker,
  schemaText,
  standaloneModule,
} from '../../core/schema.js';

const inputs: unknown[] = [
  { source: { url: 'https://git.example/fleet.git' }, providers: { file: { root: '/srv' } } },
  { source: { url: 'https://git.example/fleet.git', interval: '5x' }, providers: {} },
  { source: { url: 'ftp://nope' }, provider: {}, reconcile: { mode: 'enforc' } },
  {
    source: { url: 'https://git.example/x.git', engine: 'svn' },
    guardrails: { rateLimit: { burst: 'ten' } },
  },
  { source: 7, state: { dir: 3 }, log: { level: 'loud' } },
  'not a mapping',
];

test('the standalone module checks every input exactly as compileSchema does', async () => {
  const text = await standaloneModule(ConfigSchema, CONFIG_FORMATS);
  const m = (await import(`data:text/javascript,${encodeURIComponent(text)}`)) as {
    SCHEMA: string;
    make: (formats: ReturnType<typeof ajvFormats>) => ValidateFunction;
  };
  assert.equal(m.SCHEMA, schemaText(ConfigSchema));
  const precompiled = checkerOf<typeof ConfigSchema>(m.make(ajvFormats(CONFIG_FORMATS)), CONFIG_FORMATS);
  const compiled = compileSchema(ConfigSchema, CONFIG_FORMATS);
  let rejected = 0;
  for (const input of inputs) {
    const a = compiled(structuredClone(input));
    const b = precompiled(structuredClone(input));
    assert.deepEqual(b, a, JSON.stringify(input));
    if (!a.ok) rejected++;
  }
  assert.equal(rejected, inputs.length - 1, 'one valid input, the rest rejected with messages');
});

test("the standalone module's validator is compiled with the module, so the compile cache holds its code", async () => {
  // V8 compiles a function at its first call unless it is a parenthesized function expression; Node's
  // compile cache keeps only what was compiled with the module. The cache data V8 makes right after
  // compiling (what Node stores) is the measure: with the validator in it, it is several times larger.
  const text = await standaloneModule(ConfigSchema, CONFIG_FORMATS);
  const script = text.replace(/^export /gm, '');
  const lazy = script
    .replace('const make = (function make(formats) {', 'function make(formats) {')
    .replace(/\}\);\n$/, '}\n')
    .replace(/const (validate\d+) = \((function \1\([\s\S]*\})\);module\.exports = /, '$2;module.exports = ');
  assert.ok(lazy !== script, 'make and the validator are parenthesized function expressions');
  const cached = (code: string) => new vm.Script(code).createCachedData().length;
  const eager = cached(script);
  const plain = cached(lazy);
  assert.ok(
    eager > 4 * plain,
    `cache data: ${eager} bytes as built, ${plain} with the functions compiled lazily`,
  );
});

test('a schema that refers to itself gets a standalone module that validates as compileSchema does', async () => {
  // ajv names the validator before its definition for a recursive $ref (`{validate: validate10}`); only a
  // hoisted declaration is defined there, so such code is left as ajv wrote it (compiled at first call).
  const schema = {
    $id: 'node',
    type: 'object',
    properties: { child: { $ref: 'node' }, n: { type: 'number' } },
    additionalProperties: false,
  } as unknown as TSchema;
  const text = await standaloneModule(schema, {});
  const m = (await import(`data:text/javascript,${encodeURIComponent(text)}`)) as {
    make: (formats: ReturnType<typeof ajvFormats>) => ValidateFunction;
  };
  const precompiled = checkerOf<TSchema>(m.make(ajvFormats({})), {});
  const compiled = compileSchema(schema, {});
  for (const input of [
    { n: 1, child: { n: 2 } },
    { n: 1, child: { n: 'x' } },
    { child: { child: { extra: 1 } } },
  ])
    assert.deepEqual(
      precompiled(structuredClone(input)),
      compiled(structuredClone(input)),
      JSON.stringify(input),
    );
});

test("the state file's standalone module checks as compileSchema does; a stale or absent module is not used", async (t) => {
  const text = await standaloneModule(PersistedStateSchema, {});
  const dir = mkdtempSync(join(tmpdir(), 'steward-standalone-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const url = pathToFileURL(join(dir, 'state-schema.compiled.js'));
  writeFileSync(url, text);
  const precompiled = await precompiledChecker(url, PersistedStateSchema, {}, { root: 'the state' });
  assert.ok(precompiled, 'a module made from this schema is used');
  const compiled = compileSchema(PersistedStateSchema, {}, { root: 'the state' });
  const fresh = freshState();
  const inputs: unknown[] = [
    fresh,
    { ...fresh, revision: undefined, soak: undefined, bucket: undefined }, // a file from before them: filled
    { ...fresh, mode: 'bogus' },
    { ...fresh, version: 3 },
    { ...fresh, resources: { 'File/a': { lastApplied: 7 } }, extra: true },
    [],
  ];
  for (const input of inputs)
    assert.deepEqual(
      precompiled(structuredClone(input)),
      compiled(structuredClone(input)),
      JSON.stringify(input),
    );
  // Made from another schema (the state's changed since the build): not used. Not there: not used.
  const stale = pathToFileURL(join(dir, 'stale.js'));
  writeFileSync(stale, text.replace(/^export const SCHEMA = "/m, 'export const SCHEMA = "x'));
  assert.equal(await precompiledChecker(stale, PersistedStateSchema), undefined);
  assert.equal(
    await precompiledChecker(pathToFileURL(join(dir, 'none.js')), PersistedStateSchema),
    undefined,
  );
});
