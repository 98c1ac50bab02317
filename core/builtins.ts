/**
 * Node built-ins that a command may never need, loaded on first use through `require`.
 *
 * An ESM `import` of a built-in builds its module facade, which reads every export, and some exports load
 * more on first read. On Node 24: `node:http` loads undici (fetch, WebSocket, …: about 30 ms);
 * `node:crypto` loads every cipher and WebCrypto (≈ 6 ms); `node:util` loads worker_threads and the stream
 * stack (≈ 4 ms); `node:zlib` the stream stack. `steward plan` of a local repository uses none of them, and
 * paid for all of them at every start (issue 12, start-up). `require` builds no facade: the module is loaded
 * when a function that uses it first runs (not `process.getBuiltinModule`: Node 22.0–22.2 lack it).
 * test/agent/cli/plan.imports.test.ts keeps it so; Biome refuses the direct imports elsewhere.
 */
import type * as Crypto from 'node:crypto';
import type * as Http from 'node:http';
import type * as Https from 'node:https';
import type * as Net from 'node:net';
import type * as Util from 'node:util';
import type * as Zlib from 'node:zlib';
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

/** The built-in `id`, loaded the first time the returned function is called; `loaded` says whether it was. */
function onFirstUse<T>(id: string): (() => T) & { readonly loaded: boolean } {
  let module: T | undefined;
  const get = () => {
    module ??= load(id) as T;
    return module;
  };
  return Object.defineProperty(get, 'loaded', { get: () => module !== undefined }) as (() => T) & {
    readonly loaded: boolean;
  };
}

export const nodeCrypto = onFirstUse<typeof Crypto>('node:crypto');
export const nodeZlib = onFirstUse<typeof Zlib>('node:zlib');
export const nodeUtil = onFirstUse<typeof Util>('node:util');
export const nodeNet = onFirstUse<typeof Net>('node:net');
export const nodeHttp = onFirstUse<typeof Http>('node:http');
export const nodeHttps = onFirstUse<typeof Https>('node:https');
