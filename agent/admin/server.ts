/**
 * The admin HTTP API (SPEC §6), on fastify. Loopback by default. Every
 * `/v1/*` route needs the bearer token, except the Git push webhook, which
 * is authenticated by its HMAC signature instead (GitHub cannot send a bearer
 * token). Bodies are validated by JSON schema (unknown fields rejected, sizes
 * bounded); errors are `{error: {code, message}}`.
 */
import { readFile } from 'node:fs/promises';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Agent } from '../agent.js';
import type { Config } from '../config.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { buildOpenApi, ROUTES, type RouteId } from './routes.js';
import { loadOrCreateToken, tokensEqual, verifyHubSignature } from './token.js';
import { statusView, driftView } from './views.js';

export interface AdminDeps {
  agent: Agent;
  config: Config;
  metrics: Metrics;
  log: Logger;
}

export interface AdminServer {
  app: FastifyInstance;
  /** `http://host:port` once listening. */
  url: string;
  close(): Promise<void>;
}

type ApiErrorCode =
  | 'UNAUTHORIZED'
  | 'BAD_REQUEST'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'CONFLICT'
  | 'NOT_READY'
  | 'WEBHOOK_DISABLED'
  | 'INTERNAL';

function fail(reply: FastifyReply, status: number, code: ApiErrorCode, message: string): FastifyReply {
  return reply.code(status).type('application/json').send({ error: { code, message } });
}

const WEBHOOK_LIMIT = 5 * 1024 * 1024; // GitHub caps push payloads at 25 MB; ours carry no content we use
const BODY_LIMIT = 16 * 1024;

/** Maps framework errors to our error shape; never a 5xx for bad input. */
function onError(
  err: Error & { statusCode?: number; code?: string; validation?: unknown },
  _req: FastifyRequest,
  reply: FastifyReply,
) {
  const status = err.statusCode ?? 500;
  if (err.validation) return fail(reply, 400, 'BAD_REQUEST', err.message);
  if (status === 413)
    return fail(reply, 413, 'PAYLOAD_TOO_LARGE', `request body too large (limit ${BODY_LIMIT} bytes)`);
  if (status === 415) return fail(reply, 415, 'UNSUPPORTED_MEDIA_TYPE', 'send application/json');
  if (status >= 400 && status < 500) return fail(reply, status, 'BAD_REQUEST', err.message);
  return fail(reply, 500, 'INTERNAL', 'internal error (see the agent log)');
}

export async function startAdminServer(deps: AdminDeps): Promise<AdminServer> {
  const { agent, config, metrics, log } = deps;
  const token = await loadOrCreateToken(config.admin.tokenFile, log);
  const webhookSecret = config.admin.webhookSecretFile
    ? (await readFile(config.admin.webhookSecretFile, 'utf8')).replace(/\r?\n$/, '')
    : null;

  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false },
    },
    return503OnClosing: true,
  });

  // JSON bodies are kept raw as well: the webhook's signature is over the exact bytes.
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: WEBHOOK_LIMIT },
    (req, body, done) => {
      const raw = body as Buffer;
      (req as FastifyRequest & { rawBody?: Buffer }).rawBody = raw;
      if (req.url !== '/v1/hooks/git' && raw.length > BODY_LIMIT) {
        done(Object.assign(new Error('too large'), { statusCode: 413 }), undefined);
        return;
      }
      if (raw.length === 0) {
        done(null, undefined);
        return;
      }
      try {
        done(null, JSON.parse(raw.toString('utf8')));
      } catch (e) {
        done(Object.assign(new Error(`malformed JSON: ${errorMessage(e)}`), { statusCode: 400 }), undefined);
      }
    },
  );

  app.setErrorHandler(onError);
  // A POST without a body is an empty object, so optional-body routes (unfreeze, reconcile) validate cleanly.
  app.addHook('preValidation', async (req) => {
    if (req.body === undefined && req.method !== 'GET') req.body = {};
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const allowed = ROUTES.filter((r) => r.url === path).map((r) => r.method);
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      return fail(
        reply,
        405,
        'METHOD_NOT_ALLOWED',
        `${req.method} is not allowed on ${path}; use ${allowed.join(' or ')}`,
      );
    }
    return fail(reply, 404, 'NOT_FOUND', `no route ${req.method} ${path}; see /openapi.json`);
  });

  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0]!;
    if (!path.startsWith('/v1/') || path === '/v1/hooks/git') return;
    const auth = req.headers.authorization;
    const given = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : null;
    if (!given || !tokensEqual(given, token)) {
      reply.header('www-authenticate', 'Bearer realm="steward"');
      return fail(
        reply,
        401,
        'UNAUTHORIZED',
        'missing or wrong bearer token (Authorization: Bearer <contents of admin.tokenFile>)',
      );
    }
  });

  const handlers: Record<RouteId, (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> | unknown> =
    {
      healthz: (_req, reply) => {
        const started = agent.cycleStartedAt;
        const wedgedAfter = Math.max(10 * 60_000, 10 * config.reconcile.intervalMs);
        if (agent.stopping) return fail(reply, 503, 'NOT_READY', 'stopping');
        if (started !== null && Date.now() - started > wedgedAfter)
          return fail(
            reply,
            503,
            'NOT_READY',
            `a cycle has been running for ${Math.round((Date.now() - started) / 1000)} s`,
          );
        return { status: 'ok' };
      },
      readyz: (_req, reply) => {
        if (agent.lastGoodCycleAt === null)
          return fail(reply, 503, 'NOT_READY', 'no cycle has completed on a good revision yet');
        return { status: 'ready', lastCycleAt: new Date(agent.lastGoodCycleAt).toISOString() };
      },
      metrics: async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.text()),
      openapi: () => buildOpenApi(),
      status: () => statusView(agent),
      drift: () => driftView(agent),
      freeze: async (req) => {
        const { reason } = req.body as { reason: string };
        await agent.freeze(reason, 'admin-api');
        return statusView(agent);
      },
      unfreeze: async (req, reply) => {
        const body = (req.body ?? {}) as { approveRevision?: string };
        if (!agent.currentState.freeze && !body.approveRevision)
          return fail(reply, 409, 'CONFLICT', 'the agent is not frozen');
        await agent.unfreeze('admin-api', body.approveRevision ?? null);
        return statusView(agent);
      },
      mode: async (req) => {
        const { mode } = req.body as { mode: 'observe' | 'enforce' };
        await agent.setMode(mode, 'admin-api');
        return statusView(agent);
      },
      reconcile: (_req, reply) => {
        void agent.refresh(true).catch((e) => log.error({ err: errorMessage(e) }, 'requested cycle failed'));
        return reply.code(202).send({ accepted: true });
      },
      hook: (req, reply) => {
        if (!webhookSecret)
          return fail(
            reply,
            404,
            'WEBHOOK_DISABLED',
            'the push webhook is disabled: set admin.webhookSecretFile',
          );
        const raw = (req as FastifyRequest & { rawBody?: Buffer }).rawBody ?? Buffer.alloc(0);
        const sig = req.headers['x-hub-signature-256'];
        if (!verifyHubSignature(raw, typeof sig === 'string' ? sig : undefined, webhookSecret))
          return fail(reply, 401, 'UNAUTHORIZED', 'missing or bad X-Hub-Signature-256');
        const event = req.headers['x-github-event'];
        if (event === 'ping') return { pong: true };
        const ref = (req.body as { ref?: unknown } | undefined)?.ref;
        const wanted = config.source.ref.startsWith('refs/')
          ? [config.source.ref]
          : [`refs/heads/${config.source.ref}`, `refs/tags/${config.source.ref}`];
        if (event !== undefined && event !== 'push')
          return reply.code(202).send({ accepted: false, reason: `ignored event ${String(event)}` });
        if (typeof ref !== 'string' || !wanted.includes(ref))
          return reply
            .code(202)
            .send({ accepted: false, reason: `ignored push to ${String(ref)}; watching ${wanted[0]}` });
        void agent
          .refresh(true)
          .catch((e) => log.error({ err: errorMessage(e) }, 'webhook-triggered cycle failed'));
        return reply.code(202).send({ accepted: true });
      },
      audit: async (req) => {
        const { limit } = req.query as { limit?: string };
        const read = await agent.readAudit(limit === undefined ? 100 : Number(limit));
        return { records: read.records, skipped: read.skipped };
      },
    };

  for (const r of ROUTES) {
    app.route({
      method: r.method,
      url: r.url,
      schema: { ...(r.body ? { body: r.body } : {}), ...(r.query ? { querystring: r.query } : {}) },
      ...(r.id === 'hook' ? { bodyLimit: WEBHOOK_LIMIT } : {}),
      handler: handlers[r.id],
    });
  }

  const { host, port } = config.admin.listen;
  const address = await app.listen({ host, port });
  const loopback = host === '127.0.0.1' || host === '::1' || host === 'localhost' || host.startsWith('127.');
  if (!loopback)
    log.warn(
      { host, port },
      'admin API listens beyond loopback: keep the token secret and the network trusted',
    );
  log.info({ address }, 'admin API listening');
  return { app, url: address, close: () => app.close() };
}
