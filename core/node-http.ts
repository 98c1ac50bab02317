/**
 * `node:http` and `node:https`, loaded on first use through `require`. An ESM import of either builds its
 * module facade, which reads every export — on Node 24 that loads undici (fetch, WebSocket, …): about 30 ms
 * at the start of every command that merely imports a module with an HTTP client in it, `steward plan` on
 * a local repository included (issue 12, start-up). `require` builds no facade, and only a request loads it.
 */
import type * as Http from 'node:http';
import type * as Https from 'node:https';
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);
let http: typeof Http | undefined;
let https: typeof Https | undefined;

export const nodeHttp = (): typeof Http => {
  http ??= load('node:http') as typeof Http;
  return http;
};

export const nodeHttps = (): typeof Https => {
  https ??= load('node:https') as typeof Https;
  return https;
};
