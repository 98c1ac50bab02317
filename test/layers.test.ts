/**
 * The layers (DESIGN.md): `core/` at the bottom, then `policies/` and
 * `providers/`, then `agent/`. Nothing imports upward, and no module imports
 * itself round a circle. Read from the sources' import statements (static
 * and dynamic), so a new upward import or cycle fails here at once.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';

const ROOT = join(import.meta.dirname ?? dirname(new URL(import.meta.url).pathname), '..');
const LAYERS = ['core', 'policies', 'providers', 'agent'] as const;
/** What each top-level folder may import from. */
const MAY_IMPORT: Record<(typeof LAYERS)[number], ReadonlyArray<string>> = {
  core: ['core'],
  policies: ['core', 'policies'],
  providers: ['core', 'policies', 'providers'],
  agent: ['core', 'policies', 'providers', 'agent'],
};

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** Relative imports of a file, as project paths (`agent/x.ts`); type-only imports included (they couple too). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms),
    ...text.matchAll(/import\(\s*'(\.[^']+)'\s*\)/g),
  ].map((m) => m[1]!);
  return specs.map((s) => normalize(join(dirname(file), s)).replace(/\.js$/, '.ts'));
}

const all = LAYERS.flatMap((l) => sources(l));
const graph = new Map(all.map((f) => [f, importsOf(f)]));

test('layers: nothing imports upward (core ← policies, providers ← agent)', () => {
  const upward: string[] = [];
  for (const [file, deps] of graph) {
    const layer = file.split('/')[0] as (typeof LAYERS)[number];
    for (const d of deps) if (!MAY_IMPORT[layer].includes(d.split('/')[0]!)) upward.push(`${file} → ${d}`);
  }
  assert.deepEqual(upward, []);
});

test('layers: every relative import names a file that exists', () => {
  const missing = [...graph].flatMap(([f, deps]) =>
    deps.filter((d) => !graph.has(d)).map((d) => `${f} → ${d}`),
  );
  assert.deepEqual(missing, []);
});

test('layers: no import cycles', () => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].join(' → '));
      else if (!state.has(d) && graph.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

test('tests mirror the source tree: test/<path>[.<aspect>].test.ts tests <path>.ts (or the folder <path>/)', () => {
  const tests = readdirSync(join(ROOT, 'test'), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.test.ts'))
    .map((e) => relative(join(ROOT, 'test'), join(e.parentPath, e.name)))
    .filter((p) => !p.startsWith('e2e/') && !p.startsWith('helpers/') && p !== 'layers.test.ts');
  const orphans = tests.filter((p) => {
    const bases = [p.replace(/\.test\.ts$/, ''), p.replace(/(\.[a-z-]+)?\.test\.ts$/, '')];
    return !bases.some((b) => graph.has(`${b}.ts`) || all.some((f) => f.startsWith(`${b}/`)));
  });
  assert.deepEqual(orphans, []);
  assert.ok(tests.length > 30, `${tests.length} unit test files found`);
});
