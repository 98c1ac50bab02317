/**
 * The dashboard at `/ui` (SPEC §12): three static files (agent/admin/ui/),
 * plain browser JS, no build step, no framework, no external assets.
 *
 * The files are read into memory once when the admin server starts, from a
 * fixed table: a URL never names a file on disk, so no spelling of one can
 * reach anything else. They are public (PUBLIC_PATHS) so that the page can
 * load and ask for the token; every API call the page makes sends the bearer
 * token like any other client. Each answer carries a strict
 * Content-Security-Policy (same origin only, no inline script or style, no
 * framing, no form submission) and the usual hardening headers.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../log.js';
import { nodeCrypto } from '../../core/builtins.js';

export interface UiAssetSpec {
  /** The exact URL path it is served at. */
  url: string;
  /** Its file name in agent/admin/ui/ (dist/agent/admin/ui/ once built). */
  file: string;
  type: string;
}

export const UI_ASSETS: readonly UiAssetSpec[] = [
  { url: '/ui', file: 'index.html', type: 'text/html; charset=utf-8' },
  { url: '/ui/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { url: '/ui/app.css', file: 'app.css', type: 'text/css; charset=utf-8' },
];

export const UI_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Sent with every dashboard file. `no-cache`: revalidated (ETag) so that an upgrade shows at once. */
export const UI_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': UI_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-cache',
};

export interface UiAsset {
  type: string;
  body: Buffer;
  etag: string;
}

/**
 * Where the files are: next to this module, from the sources (tsx) and from dist/ alike; from the CLI
 * bundle (dist/bundle/, scripts/bundle-cli.mjs) they are the ones of dist/agent/admin/.
 */
export const UI_DIR =
  [new URL('./ui/', import.meta.url), new URL('../agent/admin/ui/', import.meta.url)].find((u) =>
    existsSync(new URL(UI_ASSETS[0]!.file, u)),
  ) ?? new URL('./ui/', import.meta.url);

/**
 * Reads every file of UI_ASSETS into memory, keyed by URL. A missing file is
 * logged and left out (its URL answers 404): the dashboard is not worth
 * refusing to guard for.
 */
export async function loadUiAssets(log: Logger, dir: URL = UI_DIR): Promise<Map<string, UiAsset>> {
  const out = new Map<string, UiAsset>();
  for (const a of UI_ASSETS) {
    try {
      const body = await readFile(new URL(a.file, dir));
      const etag = `"${nodeCrypto().createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
      out.set(a.url, { type: a.type, body, etag });
    } catch (e) {
      log.warn(
        { file: a.file, code: (e as NodeJS.ErrnoException).code },
        `dashboard file missing: ${a.url} is not served (reinstall steward, or run npm run build)`,
      );
    }
  }
  return out;
}

/** The handler of every UI route: the file of the route that matched (never of the raw URL), from memory. */
export function uiHandler(assets: ReadonlyMap<string, UiAsset>) {
  return (req: FastifyRequest, reply: FastifyReply) => {
    const a = assets.get(req.routeOptions.url ?? '');
    if (!a)
      return reply
        .code(404)
        .type('application/json')
        .send({
          error: { code: 'NOT_FOUND', message: 'this dashboard file is not installed (see the agent log)' },
        });
    reply.headers(UI_HEADERS).header('etag', a.etag);
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.type(a.type).send(a.body);
  };
}
