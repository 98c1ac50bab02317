/**
 * The CLI's side of the admin API: where it listens and which token to send
 * (flags, then the environment, then the agent's config), and one request
 * helper over Node's `fetch`. The token is read from a file only — never a
 * flag value, never printed; messages name the file it came from.
 */
import { readFile } from 'node:fs/promises';
import { errorMessage, isStewardError, StewardError } from '../../core/errors.js';
import { configPath } from './command.js';
import { nodeNet } from '../../core/builtins.js';

/** Where the CLI talks to, and with what. */
export interface ApiTarget {
  /** The API's base URL, no trailing slash. */
  readonly url: string;
  readonly token: string;
  /** Where the token came from (named in a 401 message, never the token itself). */
  readonly tokenFile: string;
  /** The config the defaults came from, if one was read (named in "is the agent running?"). */
  readonly configFile: string | null;
}

export interface TargetOptions {
  api?: string | undefined;
  tokenFile?: string | undefined;
  config?: string | undefined;
}

/** A decoded answer: the status, the body parsed as JSON (null if it is not JSON) and the raw text. */
export interface ApiAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
}

/** Requests that take longer than this are abandoned (an agent busy with a cycle answers well within it). */
const TIMEOUT_MS = 30_000;

/**
 * The most of an answer the CLI reads (bytes). The agent's largest answers (drift of a big fleet, an
 * audit page) stay far below it; past it the answer is not the agent's, or not one to print.
 */
export const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

/** The body as text, cut off with ADMIN_ANSWER_TOO_LARGE past `limit` bytes (never buffering more). */
async function boundedText(res: Response, url: string, limit: number): Promise<string> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new StewardError(
        'ADMIN_ANSWER_TOO_LARGE',
        `the answer from ${url} is larger than ${limit / (1024 * 1024)} MiB: that is not an answer of a steward agent; check --api`,
        { url },
      );
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `http://host:port` for an `admin.listen` (a wildcard address is reached on loopback). */
export function listenUrl(listen: { host: string; port: number }): string {
  const host =
    listen.host === '0.0.0.0' || listen.host === ''
      ? '127.0.0.1'
      : listen.host === '::'
        ? '::1'
        : listen.host;
  return `http://${nodeNet().isIPv6(host) ? `[${host}]` : host}:${listen.port}`;
}

function apiUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new StewardError('USAGE', `--api "${raw}" is not a URL (write http://127.0.0.1:7420)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new StewardError('USAGE', `--api must be an http:// or https:// URL, not ${u.protocol}`);
  if (u.username || u.password)
    throw new StewardError('USAGE', '--api must not carry credentials: the token is read from --token-file');
  return u.href.replace(/\/+$/, '');
}

/** Resolves the API URL and token: flags, then $STEWARD_TOKEN_FILE, then the config's admin section. */
export async function resolveTarget(opts: TargetOptions, env: NodeJS.ProcessEnv): Promise<ApiTarget> {
  let url = opts.api === undefined ? undefined : apiUrl(opts.api);
  let tokenFile = opts.tokenFile ?? (env['STEWARD_TOKEN_FILE'] || undefined);
  let configFile: string | null = null;
  if (url === undefined || tokenFile === undefined) {
    const file = configPath(opts.config, env);
    const { loadConfig } = await import('../config.js');
    const config = await loadConfig(file, { env }).catch((e: unknown) => {
      if (!isStewardError(e, 'CONFIG_READ')) throw e;
      throw new StewardError(
        'CONFIG_READ',
        `${e.message}; the admin commands read admin.listen and admin.tokenFile from the agent's config (-c FILE), or pass --api URL and --token-file FILE`,
        e.details,
      );
    });
    configFile = config.file;
    if (url === undefined) {
      if (config.admin.listen.port === 0)
        throw new StewardError(
          'USAGE',
          `admin.listen in ${config.file} has port 0 (chosen at start): pass --api http://host:port`,
        );
      url = listenUrl(config.admin.listen);
    }
    tokenFile ??= config.admin.tokenFile;
  }
  return { url, token: await readTokenFile(tokenFile), tokenFile, configFile };
}

const TOKEN_HINTS: Readonly<Record<string, string>> = {
  ENOENT: 'the agent writes it on its first start (admin.tokenFile); start it, or pass --token-file',
  EACCES: 'run as the user the agent runs as, or give yourself read access',
};

async function readTokenFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? errorMessage(e);
    const hint = TOKEN_HINTS[code] ?? 'pass --token-file FILE';
    throw new StewardError('ADMIN_TOKEN_READ', `cannot read the admin token file ${path}: ${code}; ${hint}`, {
      path,
    });
  }
  const token = text.trim();
  if (token === '' || /\s/.test(token))
    throw new StewardError(
      'ADMIN_TOKEN_READ',
      `the admin token file ${path} ${token === '' ? 'is empty' : 'holds more than one word'}; it must hold the agent's admin token only`,
      { path },
    );
  return token;
}

/** The errno-like code of a failed fetch (`ECONNREFUSED`, `ENOTFOUND`, …), if Node says one. */
function causeCode(e: unknown): string | undefined {
  const cause = (e as { cause?: { code?: unknown; errors?: Array<{ code?: unknown }> } } | null)?.cause;
  const code = cause?.code ?? cause?.errors?.[0]?.code;
  return typeof code === 'string' ? code : undefined;
}

/** One request; a connection failure or a 401 throws a coded error that says what to do. */
export async function request(
  target: ApiTarget,
  method: 'GET' | 'POST' | 'PUT',
  path: string,
  body?: unknown,
  limit = MAX_ANSWER_BYTES,
): Promise<ApiAnswer> {
  const headers: Record<string, string> = { authorization: `Bearer ${target.token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${target.url}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      redirect: 'error',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (e) {
    const why =
      (e as Error).name === 'TimeoutError'
        ? `no answer in ${TIMEOUT_MS / 1000}s`
        : (causeCode(e) ?? errorMessage(e));
    const run = `steward run -c ${target.configFile ?? 'steward.yaml'}`;
    throw new StewardError(
      'ADMIN_UNREACHABLE',
      `cannot reach the admin API at ${target.url} (${why}): is the agent running? Start it with ${run}, or point --api at its admin.listen`,
      { url: target.url },
    );
  }
  const text = await boundedText(res, target.url, limit);
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {}
  if (res.status === 401)
    throw new StewardError(
      'ADMIN_UNAUTHORIZED',
      `the admin API at ${target.url} refused the token from ${target.tokenFile}: use the agent's admin.tokenFile (--token-file FILE or $STEWARD_TOKEN_FILE)`,
      { url: target.url, tokenFile: target.tokenFile },
    );
  return { status: res.status, body: parsed, text };
}

/** The API's `{error: {code, message}}`, or a stand-in naming the HTTP status. */
export function apiError(answer: ApiAnswer): { code: string; message: string } {
  const e = (answer.body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (e && typeof e.code === 'string' && typeof e.message === 'string')
    return { code: e.code, message: e.message };
  return { code: `HTTP_${answer.status}`, message: 'the admin API answered without an error body' };
}
