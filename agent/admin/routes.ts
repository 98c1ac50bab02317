/** The admin API's routes, in one table: fastify registers them and /openapi.json describes them. */
import { VERSION } from '../version.js';
import {
  auditQuery,
  emptyQuery,
  errorSchema,
  freezeBody,
  modeBody,
  unfreezeBody,
  windowOverrideBody,
} from './schemas.js';

export type RouteId =
  | 'healthz'
  | 'readyz'
  | 'metrics'
  | 'openapi'
  | 'status'
  | 'drift'
  | 'freeze'
  | 'unfreeze'
  | 'mode'
  | 'reconcile'
  | 'hook'
  | 'audit'
  | 'ui'
  | 'uiScript'
  | 'uiStyle'
  | 'windowOverride'
  | 'fleet';

export interface RouteSpec {
  id: RouteId;
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  summary: string;
  /**
   * Who may call it. Absent means `bearer`: deny by default. `none` is only
   * accepted for the paths in PUBLIC_PATHS (the server refuses to start otherwise).
   */
  auth?: 'none' | 'bearer' | 'hmac';
  body?: object;
  query?: object;
  /** Success status codes. */
  ok: number[];
}

/** The only routes open without credentials (SPEC §9). */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set([
  '/healthz',
  '/readyz',
  '/metrics',
  '/openapi.json',
  // The dashboard's three static files (agent/admin/ui.ts): the page must load to ask for the token;
  // every API call it makes needs that token.
  '/ui',
  '/ui/app.js',
  '/ui/app.css',
]);

export const ROUTES: readonly RouteSpec[] = [
  {
    id: 'healthz',
    method: 'GET',
    url: '/healthz',
    summary: 'Liveness: 200 while the process and its loop are alive',
    auth: 'none',
    ok: [200],
  },
  {
    id: 'readyz',
    method: 'GET',
    url: '/readyz',
    summary: 'Readiness: 200 once a cycle has completed on a good revision',
    auth: 'none',
    ok: [200],
  },
  { id: 'metrics', method: 'GET', url: '/metrics', summary: 'Prometheus metrics', auth: 'none', ok: [200] },
  { id: 'openapi', method: 'GET', url: '/openapi.json', summary: 'This document', auth: 'none', ok: [200] },
  {
    id: 'status',
    method: 'GET',
    url: '/v1/status',
    summary: 'Mode, freeze, revision, last cycle figures',
    query: emptyQuery,
    ok: [200],
  },
  {
    id: 'drift',
    method: 'GET',
    url: '/v1/drift',
    summary: 'Every drifted resource with its JSON Patch',
    query: emptyQuery,
    ok: [200],
  },
  {
    id: 'freeze',
    method: 'POST',
    url: '/v1/freeze',
    summary: 'Stop acting, keep detecting; with until (ISO time) or for (duration) it ends by itself',
    body: freezeBody,
    ok: [200],
  },
  {
    id: 'unfreeze',
    method: 'POST',
    url: '/v1/unfreeze',
    summary:
      'Lift the freeze; approveRevision exempts that revision from the mass-drift halt (the cap still applies)',
    body: unfreezeBody,
    ok: [200],
  },
  {
    id: 'mode',
    method: 'PUT',
    url: '/v1/mode',
    summary: 'Set observe or enforce (persisted)',
    body: modeBody,
    ok: [200],
  },
  {
    id: 'reconcile',
    method: 'POST',
    url: '/v1/reconcile',
    summary: 'Poll the source and run a cycle now',
    ok: [202],
  },
  {
    id: 'hook',
    method: 'POST',
    url: '/v1/hooks/git',
    summary: 'Git push webhook (GitHub format, X-Hub-Signature-256); triggers a poll and a cycle',
    auth: 'hmac',
    ok: [200, 202],
  },
  {
    id: 'audit',
    method: 'GET',
    url: '/v1/audit',
    summary: 'Applied actions, newest first',
    query: auditQuery,
    ok: [200],
  },
  { id: 'ui', method: 'GET', url: '/ui', summary: 'The dashboard (HTML)', auth: 'none', ok: [200, 304] },
  {
    id: 'uiScript',
    method: 'GET',
    url: '/ui/app.js',
    summary: "The dashboard's script",
    auth: 'none',
    ok: [200, 304],
  },
  {
    id: 'uiStyle',
    method: 'GET',
    url: '/ui/app.css',
    summary: "The dashboard's style sheet",
    auth: 'none',
    ok: [200, 304],
  },
  {
    id: 'windowOverride',
    method: 'POST',
    url: '/v1/window-override',
    summary:
      'Open the change windows for a while, with a reason (audited; never lifts a freeze or observe mode)',
    body: windowOverrideBody,
    ok: [200],
  },
  {
    id: 'fleet',
    method: 'GET',
    url: '/v1/fleet',
    summary: 'The fleet: agents, their revision, wave, health, last cycle (the files backend: this agent)',
    query: emptyQuery,
    ok: [200],
  },
];

/** The OpenAPI 3.1 document for ROUTES. */
export function buildOpenApi(): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const r of ROUTES) {
    const responses: Record<string, object> = {};
    for (const c of r.ok) responses[String(c)] = { description: 'OK' };
    for (const [c, d] of [
      ['400', 'bad request (malformed JSON, wrong types, unknown fields)'],
      ['401', 'missing or wrong credentials'],
      ['404', 'not found'],
      ['405', 'method not allowed'],
      ['409', 'conflict'],
      ['413', 'body too large'],
      ['415', 'unsupported content type (send application/json)'],
    ] as const)
      if (r.auth !== 'none' || c === '404' || c === '405')
        responses[c] = { description: d, content: { 'application/json': { schema: errorSchema } } };
    const op: Record<string, unknown> = { operationId: r.id, summary: r.summary, responses };
    if ((r.auth ?? 'bearer') === 'bearer') op['security'] = [{ bearer: [] }];
    if (r.auth === 'hmac')
      op['parameters'] = [
        { name: 'X-Hub-Signature-256', in: 'header', required: true, schema: { type: 'string' } },
      ];
    if (r.body)
      op['requestBody'] = {
        required: r.id !== 'unfreeze',
        content: { 'application/json': { schema: r.body } },
      };
    if (r.query && 'properties' in r.query) {
      const props = (r.query as { properties: Record<string, object> }).properties;
      op['parameters'] = Object.entries(props).map(([name, schema]) => ({
        name,
        in: 'query',
        required: false,
        schema,
      }));
    }
    paths[r.url] = { ...(paths[r.url] ?? {}), [r.method.toLowerCase()]: op };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'steward admin API', version: VERSION },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}
