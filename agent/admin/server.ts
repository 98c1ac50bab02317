/**
 * The admin HTTP API (SPEC §6), on fastify. Loopback by default.
 *
 * Authentication is decided on the route that will run (SPEC §9): every
 * route registered on the app gets its auth hook from its own `config.auth`
 * in an `onRoute` hook, so whatever raw URL the router decoded to reach a
 * handler, that handler's check ran first. A route without a declared auth
 * needs the bearer token; `none` is refused unless the path is in
 * PUBLIC_PATHS. The Git push webhook is authenticated by its HMAC instead
 * (GitHub cannot send a bearer token).
 *
 * Bodies: auth hooks run in `onRequest`, before any body byte is read; an
 * unauthenticated request is answered (and its connection closed) without
 * reading its body. Authenticated bodies are limited to 16 KiB; the webhook's
 * to 5 MiB, only once it is enabled and carries a well-formed signature, with
 * at most WEBHOOK_BUFFER_BUDGET bytes of them in flight, and its HMAC is verified over the raw
 * bytes before JSON.parse.
 *
 * Errors, fastify's own included, are `{error: {code, message}}`.
 */
// biome-ignore lint/style/noRestrictedImports: types only, erased at build
import type { Socket } from 'node:net';
import type { TSchema } from 'typebox';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type onRequestHookHandler,
} from 'fastify';
import type { Agent } from '../agent.js';
import type { Config } from '../config.js';
import { errorMessage, isStewardError, StewardError } from '../../core/errors.js';
import { compileSchema } from '../../core/schema.js';
import { refCandidates } from '../source/refs.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { buildOpenApi, PUBLIC_PATHS, ROUTES, type RouteId, type RouteSpec } from './routes.js';
import {
  newToken,
  readToken,
  readWebhookSecret,
  tokensEqual,
  verifyHubSignature,
  wellFormedHubSignature,
  writeNewToken,
} from './token.js';
import { loadUiAssets, uiHandler } from './ui.js';
import { MAX_FREEZE_MS, MAX_OVERRIDE_MS, requestedEnd } from './schemas.js';
import { driftView, statusView } from './views.js';
import type { FleetSource } from '../fleet/registry.js';
import { selfFleet } from '../fleet/view.js';

export interface AdminDeps {
  agent: Agent;
  config: Config;
  metrics: Metrics;
  log: Logger;
  /** What `GET /v1/fleet` shows; default: this agent alone. */
  fleet?: FleetSource;
}

/** What the API needs from disk, read (never created) before anything else starts. */
export interface AdminSecrets {
  token: string;
  /** The token was generated now: `open()` writes it to admin.tokenFile. */
  tokenIsNew: boolean;
  webhookSecret: string | null;
}

export interface AdminServer {
  app: FastifyInstance;
  /** `http://host:port` once listening. */
  url: string;
  /**
   * Until this is called every request answers 503 NOT_READY (the port is
   * bound early so that a taken port fails the start before anything is
   * created). Writes a generated token file, then serves.
   */
  open(): Promise<void>;
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
  | 'TOO_MANY_REQUESTS'
  | 'INTERNAL';

function fail(reply: FastifyReply, status: number, code: ApiErrorCode, message: string): FastifyReply {
  return failCoded(reply, status, code, message);
}

/** An error answer whose code comes from the error registry (core/errors.ts). */
function failCoded(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).type('application/json').send({ error: { code, message } });
}

/** An error that already knows its API answer (thrown from the body parser). */
function apiError(status: number, code: ApiErrorCode, message: string): Error {
  return Object.assign(new Error(message), { statusCode: status, apiCode: code });
}

export const WEBHOOK_LIMIT = 5 * 1024 * 1024; // GitHub caps push payloads at 25 MB; ours carry no content we use
export const BODY_LIMIT = 16 * 1024;
/**
 * Bytes of signed-looking webhook bodies buffered at once (each reserves its
 * Content-Length, or WEBHOOK_LIMIT when chunked); a delivery over it gets 429.
 */
export const WEBHOOK_BUFFER_BUDGET = 32 * 1024 * 1024;

const STATUS_CODES: Record<number, ApiErrorCode> = {
  401: 'UNAUTHORIZED',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'TOO_MANY_REQUESTS',
  503: 'NOT_READY',
};

/** Maps framework errors to our error shape; never a 5xx for bad input. */
function onError(
  err: Error & { statusCode?: number; code?: string; validation?: unknown; apiCode?: ApiErrorCode },
  _req: FastifyRequest,
  reply: FastifyReply,
) {
  const status = err.statusCode ?? 500;
  if (err.apiCode) return fail(reply, status, err.apiCode, err.message);
  // Agent refusals that are the caller's business, in our shape with their own code.
  if (isStewardError(err, 'NOT_FROZEN')) return failCoded(reply, 409, err.code, err.message);
  if (isStewardError(err, 'MASS_DRIFT_FROZEN') || isStewardError(err, 'NO_CHANGE_WINDOWS'))
    return failCoded(reply, 409, err.code, err.message);
  if (isStewardError(err, 'STATE_CONFLICT')) return failCoded(reply, 409, err.code, err.message);
  if (isStewardError(err, 'STATE_UNWRITABLE')) return failCoded(reply, 503, err.code, err.message);
  if (err.validation) return fail(reply, 400, 'BAD_REQUEST', err.message);
  if (status === 413)
    return fail(reply, 413, 'PAYLOAD_TOO_LARGE', `request body too large (limit ${BODY_LIMIT} bytes)`);
  if (status === 415) return fail(reply, 415, 'UNSUPPORTED_MEDIA_TYPE', 'send application/json');
  if (status >= 400 && status < 500)
    return fail(reply, status, STATUS_CODES[status] ?? 'BAD_REQUEST', err.message);
  return fail(reply, 500, 'INTERNAL', 'internal error (see the agent log)');
}

/** Malformed HTTP (bad request line, header overflow, timeouts): answered in our shape, then closed. */
function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, text, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'the request was not sent in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'request headers too large']
        : [400, 'Bad Request', 'malformed HTTP request'];
  answerRaw(socket, status, text, 'BAD_REQUEST', message);
}

/** An error answer written straight to the socket (no fastify request exists), then closed. */
function answerRaw(socket: Socket, status: number, text: string, code: ApiErrorCode, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Reads the token (if any) and the webhook secret; creates nothing. */
export async function readAdminSecrets(config: Config, log: Logger): Promise<AdminSecrets> {
  const existing = await readToken(config.admin.tokenFile, log);
  const webhookSecret = config.admin.webhookSecretFile
    ? await readWebhookSecret(config.admin.webhookSecretFile)
    : null;
  return { token: existing ?? newToken(), tokenIsNew: existing === null, webhookSecret };
}

/** Why the agent is not ready, or null when it is. */
function notReadyReason(agent: Agent): string | null {
  if (agent.lastGoodCycleAt === null) return 'no cycle has completed on a good revision yet';
  // Public route: the reason (it names paths) is in the authenticated /v1/status, not here.
  if (!agent.stateWritable)
    return 'the state cannot be written: acting on nothing until it can (see /v1/status)';
  return null;
}

const hasBody = (req: FastifyRequest): boolean =>
  req.headers['transfer-encoding'] !== undefined ||
  (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

/** Marks a request whose webhook signature was checked against its raw body. */
const SIGNATURE_VERIFIED = Symbol('signatureVerified');
type HookRequest = FastifyRequest & { [SIGNATURE_VERIFIED]?: boolean };

export async function startAdminServer(deps: AdminDeps & { secrets?: AdminSecrets }): Promise<AdminServer> {
  const { agent, config, metrics, log } = deps;
  const secrets = deps.secrets ?? (await readAdminSecrets(config, log));
  const { token, webhookSecret } = secrets;
  let phase: 'starting' | 'open' | 'closing' = 'starting';
  let webhookBuffered = 0;
  const serveUi = uiHandler(await loadUiAssets(log));

  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    // One path, one route: no trailing-slash, duplicate-slash or case folding, no `;` parameters.
    routerOptions: {
      ignoreTrailingSlash: false,
      ignoreDuplicateSlashes: false,
      caseSensitive: true,
      ...({ useSemicolonDelimiter: false } as object), // accepted at run time, missing from the types
    },
    exposeHeadRoutes: false,
    // Closing is answered by our own gate below (in our error shape), not fastify's raw 503.
    return503OnClosing: false,
    clientErrorHandler: onClientError,
    frameworkErrors: (err, _req, reply) => {
      const e = err as Error & { code?: string };
      if (e.code === 'FST_ERR_BAD_URL')
        return fail(reply, 400, 'BAD_REQUEST', 'malformed URL (bad percent-encoding)');
      return fail(reply, 400, 'BAD_REQUEST', 'the request could not be routed');
    },
  });

  // CONNECT never reaches fastify (node hands the socket to 'connect' listeners, or drops it without one).
  app.server.on('connect', (_req: unknown, socket: Socket) => {
    socket.on('error', () => socket.destroy()); // node removed its own error listener: a reset must not throw
    answerRaw(
      socket,
      405,
      'Method Not Allowed',
      'METHOD_NOT_ALLOWED',
      'CONNECT is not allowed here; see /openapi.json',
    );
  });

  /** Rejects a request; one that is still sending a body gets its connection closed instead of read. */
  const deny = (
    req: FastifyRequest,
    reply: FastifyReply,
    status: number,
    code: ApiErrorCode,
    msg: string,
  ) => {
    if (hasBody(req)) reply.header('connection', 'close');
    return fail(reply, status, code, msg);
  };

  const bearer: onRequestHookHandler = async (req, reply) => {
    const auth = req.headers.authorization;
    const given = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : null;
    if (!given || !tokensEqual(given, token)) {
      reply.header('www-authenticate', 'Bearer realm="steward"');
      return deny(
        req,
        reply,
        401,
        'UNAUTHORIZED',
        'missing or wrong bearer token (Authorization: Bearer <contents of admin.tokenFile>)',
      );
    }
  };

  const hmacGate: onRequestHookHandler = async (req, reply) => {
    if (!webhookSecret)
      return deny(
        req,
        reply,
        404,
        'WEBHOOK_DISABLED',
        'the push webhook is disabled: set admin.webhookSecretFile',
      );
    if (!wellFormedHubSignature(req.headers['x-hub-signature-256']))
      return deny(req, reply, 401, 'UNAUTHORIZED', 'missing or bad X-Hub-Signature-256');
    const declared = Number(req.headers['content-length']);
    const reserve =
      Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, WEBHOOK_LIMIT) : WEBHOOK_LIMIT;
    if (webhookBuffered + reserve > WEBHOOK_BUFFER_BUDGET)
      return deny(req, reply, 429, 'TOO_MANY_REQUESTS', 'too many webhook deliveries at once; retry later');
    webhookBuffered += reserve;
    reply.raw.once('close', () => {
      webhookBuffered -= reserve;
    });
  };

  // Deny by default: every route, whoever registers it, gets the auth hook its config declares.
  app.addHook('onRoute', (opts) => {
    const declared = (opts.config as { auth?: RouteSpec['auth'] } | undefined)?.auth ?? 'bearer';
    if (declared === 'none' && !PUBLIC_PATHS.has(opts.url))
      throw new Error(
        `route ${opts.method} ${opts.url} cannot be public; only ${[...PUBLIC_PATHS].join(', ')} are`,
      );
    const own =
      opts.onRequest === undefined ? [] : Array.isArray(opts.onRequest) ? opts.onRequest : [opts.onRequest];
    const gate = declared === 'bearer' ? [bearer] : declared === 'hmac' ? [hmacGate] : [];
    opts.onRequest = [...gate, ...own];
  });

  /** 404, or 405 when the router would take the same path with another method. */
  const notFound = (req: FastifyRequest, reply: FastifyReply) => {
    const url = req.url.split('?')[0]!;
    const allowed = [...new Set(ROUTES.map((r) => r.method))].filter(
      (m) => m !== req.method && app.hasRoute({ url, method: m }),
    );
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      return deny(
        req,
        reply,
        405,
        'METHOD_NOT_ALLOWED',
        `${req.method} is not allowed here; use ${allowed.join(' or ')}`,
      );
    }
    return deny(req, reply, 404, 'NOT_FOUND', 'no such route; see /openapi.json');
  };

  // Before start-up finished and while closing, nothing is served (404s included).
  app.addHook('onRequest', async (req, reply) => {
    if (phase !== 'open')
      return deny(req, reply, 503, 'NOT_READY', phase === 'starting' ? 'starting' : 'stopping');
    // No route: answered here, before fastify would read and parse the (unauthenticated) body.
    if (req.is404) return notFound(req, reply);
  });

  // JSON only (fastify's default text/plain parser would let other types reach validation instead of 415);
  // the webhook's HMAC is checked over the exact bytes before they are parsed.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const raw = body as Buffer;
    if ((req.routeOptions.config as { routeId?: RouteId }).routeId === 'hook') {
      const sig = req.headers['x-hub-signature-256'];
      if (
        !webhookSecret ||
        !verifyHubSignature(raw, typeof sig === 'string' ? sig : undefined, webhookSecret)
      ) {
        done(apiError(401, 'UNAUTHORIZED', 'missing or bad X-Hub-Signature-256'), undefined);
        return;
      }
      (req as HookRequest)[SIGNATURE_VERIFIED] = true;
    }
    if (raw.length === 0) {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(raw.toString('utf8')));
    } catch (e) {
      done(apiError(400, 'BAD_REQUEST', `malformed JSON: ${errorMessage(e)}`), undefined);
    }
  });

  // Bodies and queries are checked by the same tooling as the config and the state file.
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const check = compileSchema(
      schema as TSchema,
      {},
      { root: httpPart === 'querystring' ? 'the query' : 'the body' },
    );
    return (data: unknown) => {
      const r = check(data);
      return r.ok ? true : { error: new Error(r.issues.map((i) => i.message).join('; ')) };
    };
  });
  app.setErrorHandler(onError);
  // A POST without a body is an empty object, so optional-body routes (unfreeze, reconcile) validate cleanly.
  app.addHook('preValidation', async (req) => {
    if (req.body === undefined && req.method !== 'GET') req.body = {};
  });
  // Normally answered by the onRequest hook above; the 405 decision uses the router itself.
  app.setNotFoundHandler(notFound);

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
        const why = notReadyReason(agent);
        if (why !== null) return fail(reply, 503, 'NOT_READY', why);
        return { status: 'ready', lastCycleAt: new Date(agent.lastGoodCycleAt!).toISOString() };
      },
      metrics: async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.text()),
      openapi: () => buildOpenApi(),
      status: async () => statusView(agent, await agent.statusState()),
      drift: () => driftView(agent),
      freeze: async (req, reply) => {
        const body = req.body as { reason: string; until?: string; for?: string };
        const end = requestedEnd(body, agent.now(), MAX_FREEZE_MS);
        if ('problem' in end) return fail(reply, 400, 'BAD_REQUEST', end.problem);
        await agent.freeze(body.reason, 'admin-api', end.end);
        return statusView(agent);
      },
      windowOverride: async (req, reply) => {
        const body = req.body as { reason: string; for: string };
        const end = requestedEnd(body, agent.now(), MAX_OVERRIDE_MS);
        if ('problem' in end) return fail(reply, 400, 'BAD_REQUEST', end.problem);
        await agent.overrideWindow(body.reason, end.end!, 'admin-api');
        return statusView(agent);
      },
      unfreeze: async (req) => {
        const body = (req.body ?? {}) as { approveRevision?: string };
        // Not frozen: 409 NOT_FROZEN, also with approveRevision (no pre-approvals).
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
        // A delivery without a JSON body never met the parser: its signature is over the empty body.
        if (!(req as HookRequest)[SIGNATURE_VERIFIED]) {
          const sig = req.headers['x-hub-signature-256'];
          if (
            !webhookSecret ||
            !verifyHubSignature(Buffer.alloc(0), typeof sig === 'string' ? sig : undefined, webhookSecret)
          )
            return fail(reply, 401, 'UNAUTHORIZED', 'missing or bad X-Hub-Signature-256');
        }
        const event = req.headers['x-github-event'];
        if (event === 'ping') return { pong: true };
        const ref = (req.body as { ref?: unknown } | undefined)?.ref;
        const wanted = refCandidates(config.source.ref);
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
      ui: serveUi,
      uiScript: serveUi,
      uiStyle: serveUi,
      fleet: () => (deps.fleet ?? selfFleet(agent, config.agent)).view(),
    };

  for (const r of ROUTES) {
    app.route({
      method: r.method,
      url: r.url,
      config: { routeId: r.id, auth: r.auth ?? 'bearer' },
      schema: { ...(r.body ? { body: r.body } : {}), ...(r.query ? { querystring: r.query } : {}) },
      bodyLimit: r.auth === 'hmac' ? WEBHOOK_LIMIT : BODY_LIMIT,
      handler: handlers[r.id],
    });
  }

  const { host, port } = config.admin.listen;
  let address: string;
  try {
    address = await app.listen({ host, port });
  } catch (e) {
    await app.close().catch(() => undefined);
    const code = (e as NodeJS.ErrnoException).code ?? errorMessage(e);
    const hint =
      code === 'EADDRINUSE'
        ? 'another process (perhaps a steward already running with this config) holds that port: stop it (ss -ltnp) or set another admin.listen'
        : code === 'EACCES'
          ? 'ports below 1024 need privileges: use a higher port in admin.listen'
          : 'check admin.listen (host must be an address of this machine)';
    throw new StewardError('ADMIN_LISTEN_FAILED', `cannot listen on ${host}:${port}: ${code}; ${hint}`, {
      host,
      port,
      errno: code,
    });
  }
  const loopback = host === '127.0.0.1' || host === '::1' || host === 'localhost' || host.startsWith('127.');
  if (!loopback)
    log.warn(
      { host, port },
      'admin API listens beyond loopback: keep the token secret and the network trusted',
    );
  return {
    app,
    url: address,
    async open() {
      if (secrets.tokenIsNew) {
        await writeNewToken(config.admin.tokenFile, token, log);
        secrets.tokenIsNew = false;
      }
      phase = 'open';
      log.info({ address }, 'admin API listening');
    },
    close: () => {
      phase = 'closing';
      return app.close();
    },
  };
}
