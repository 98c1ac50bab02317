/**
 * `import()` of what a build leaves outside its bundle: a package loaded on first use (isomorphic-git) or a
 * file by URL (a precompiled schema). The one place that writes it, because the one-file CLI bundle runs as a
 * `vm.Script` (bin/steward.js: so that V8's code cache can hold the functions a command ran, not only its
 * top level), and a script can make no `import()` of its own without an experimental flag: there,
 * scripts/bundle-cli.mjs puts the loader's `import()` in place of this module.
 */
export function importModule<T = unknown>(specifier: string): Promise<T> {
  return import(specifier) as Promise<T>;
}
