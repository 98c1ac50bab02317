// An esbuild plugin: `typebox/type` is resolved to `shim` (core/typebox-json.ts, or its build in dist/core/),
// the same schemas as plain JSON builders without TypeBox's code in the bundle. Used by scripts/bundle-cli.mjs
// and by test/core/typebox-json.test.ts, which bundles steward's schema modules with it and compares them.
export function typeboxAsJson(shim) {
  return {
    name: 'typebox-as-json',
    setup(build) {
      build.onResolve({ filter: /^typebox\/type$/ }, () => ({ path: shim }));
    },
  };
}
