import type { Plugin } from 'esbuild';
/** An esbuild plugin resolving `typebox/type` to `shim` (see typebox-json-plugin.mjs). */
export function typeboxAsJson(shim: string): Plugin;
