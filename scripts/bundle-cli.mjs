#!/usr/bin/env node
// After `tsc`: bundles dist/agent/cli.js (and the modules its commands import on demand, as chunks) into
// dist/bundle/, so that a one-shot command such as `steward plan` loads a few files instead of ~900. The cost
// it removes is Node's ESM loader resolving and reading every module of typebox (709 files: ≈ 200 ms) and the
// CJS-export scan of ajv & co. Only pure-JavaScript packages needed on the hot path are bundled; the rest
// (the AWS SDK, fastify, pino, isomorphic-git, openpgp, pg, ...) stay external and load as before, on demand.
//
// esbuild is a devDependency (npm ci installs it). Without it this script says so and exits 0: bin/steward.js then
// runs dist/agent/cli.js unbundled, which behaves the same, only slower to start.
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { typeboxAsJson } from './typebox-json-plugin.mjs';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const outdir = join(root, 'dist', 'bundle');
const BUNDLED = new Set([
  'typebox',
  'ajv',
  'fast-uri',
  'fast-deep-equal',
  'json-schema-traverse',
  'require-from-string',
  'js-yaml',
  'fast-json-patch',
  'diff',
  '@noble/hashes',
  'croner',
]);

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  process.stderr.write('bundle-cli: esbuild is not installed; steward runs from dist/agent unbundled\n');
  process.exit(0);
}

// A fresh directory: chunk names are content hashes, so an earlier build's would stay beside this one's.
rmSync(outdir, { recursive: true, force: true });

// ajv's standalone code for the config schema and the state file's, so no command compiles them at run time
// (core/schema.ts precompiledChecker, used by agent/config.ts and agent/state/file-store.ts). Self-contained
// (the formats are passed in), so the bundle gets a copy beside its chunks, where their import resolves.
{
  const { standaloneModule } = await import(join(root, 'dist', 'core', 'schema.js'));
  const { ConfigSchema, CONFIG_FORMATS } = await import(join(root, 'dist', 'agent', 'config', 'schema.js'));
  const { PersistedStateSchema } = await import(join(root, 'dist', 'agent', 'state', 'types.js'));
  const write = (module, beside, inBundle) => {
    writeFileSync(join(root, 'dist', 'agent', beside), module);
    mkdirSync(dirname(join(outdir, inBundle)), { recursive: true });
    writeFileSync(join(outdir, inBundle), module);
  };
  write(await standaloneModule(ConfigSchema, CONFIG_FORMATS), 'config/schema.compiled.js', 'config/schema.compiled.js');
  write(await standaloneModule(PersistedStateSchema, {}), 'state/state-schema.compiled.js', 'state-schema.compiled.js');
}

const pkgOf = (spec) => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
const externalPackages = {
  name: 'external-packages',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (a) =>
      a.path.startsWith('node:') || !BUNDLED.has(pkgOf(a.path)) ? { path: a.path, external: true } : undefined,
    );
  },
};
const ONE_SHOT_FILE = 'one-shot.cjs';
const result = await esbuild.build({
  entryPoints: [join(root, 'dist', 'agent', 'cli.js')],
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  keepNames: true,
  // Less for V8 to parse at every start (1.5 → 1.2 MB; ≈ 6 % of plan's start-up CPU, measured): names are kept.
  minifyWhitespace: true,
  minifySyntax: true,
  outdir,
  metafile: true,
  logLevel: 'warning',
  plugins: [
    // TypeBox builds the schemas' JSON at every start; the bundle builds the same JSON without it.
    typeboxAsJson(join(root, 'dist', 'core', 'typebox-json.js')),
    externalPackages,
  ],
});

// The same program in one CommonJS file, for the commands that start, read and exit (bin/steward.js ONE_SHOT:
// plan, validate). bin/steward.js runs it as a vm.Script with V8's code cache of the functions the command ran
// the last time. Node's compile cache keeps a module's top level only, so every function plan calls was
// compiled again at every start (≈ 25 ms of plan on Node 24, issue 12). One file and CommonJS, because a
// script has no `import` statement; what it imports on demand goes through core/dynamic-import.js, which here
// calls the loader's import() (a script cannot make one itself without an experimental flag).
const oneShot = await esbuild.build({
  entryPoints: [join(root, 'dist', 'agent', 'cli.js')],
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  keepNames: true,
  minifyWhitespace: true,
  minifySyntax: true,
  outfile: join(outdir, ONE_SHOT_FILE),
  write: false,
  metafile: true,
  logLevel: 'warning',
  // Where a module finds the files beside it (schemas, the admin UI): the bundle file, as in the chunks above.
  define: { 'import.meta.url': '__bundleUrl' },
  banner: { js: 'var __bundleUrl=require("node:url").pathToFileURL(__filename).href;' },
  plugins: [
    typeboxAsJson(join(root, 'dist', 'core', 'typebox-json.js')),
    {
      name: 'loader-import',
      setup(build) {
        build.onLoad({ filter: /[\\/]dist[\\/]core[\\/]dynamic-import\.js$/ }, () => ({
          contents: 'export function importModule(specifier) { return __stewardImport(specifier); }',
          loader: 'js',
        }));
      },
    },
    externalPackages,
  ],
});
const [cjs] = oneShot.outputFiles;
if (/\bimport\(/.test(cjs.text))
  throw new Error(
    `bundle-cli: ${ONE_SHOT_FILE} has an import() of its own, which a vm.Script cannot make: import on demand through core/dynamic-import.ts`,
  );
writeFileSync(cjs.path, cjs.contents);
const id = createHash('sha256').update(cjs.contents).digest('hex').slice(0, 16);
writeFileSync(join(outdir, 'one-shot.json'), `${JSON.stringify({ file: ONE_SHOT_FILE, id })}\n`);

// bin/steward.js uses the bundle only while none of these is newer than it (a `tsc` run without this script).
const inputs = [...new Set([...Object.keys(result.metafile.inputs), ...Object.keys(oneShot.metafile.inputs)])]
  .map((p) => relative(root, join(process.cwd(), p)))
  .filter((p) => p.startsWith('dist/'));
writeFileSync(join(outdir, 'inputs.json'), `${JSON.stringify(inputs)}\n`);
