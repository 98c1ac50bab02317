/**
 * HTTP/1.1 over a bare socket: the request target is sent byte for byte
 * (fetch and http.request normalise or refuse the odd paths a corpus needs).
 */
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  json: unknown;
}

export interface RawRequest {
  method: string;
  /** The request target exactly as sent (may hold raw UTF-8, `#`, `;`, an absolute URI). */
  target: string;
  headers?: Record<string, string>;
  body?: string;
}

/** Parses one `Connection: close` response. */
function parse(raw: Buffer): RawResponse {
  const text = raw.toString('utf8');
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const [statusLine, ...lines] = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = end < 0 ? '' : text.slice(end + 4);
  if (headers['transfer-encoding'] === 'chunked') {
    let out = '';
    let rest = body;
    for (;;) {
      const nl = rest.indexOf('\r\n');
      const size = Number.parseInt(rest.slice(0, nl), 16);
      if (!(size > 0)) break;
      out += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    body = out;
  }
  let json: unknown = null;
  try {
    json = JSON.parse(body);
  } catch {}
  return { status, headers, body, json };
}

/** Sends one request on a new connection and reads the whole response. */
export function rawRequest(baseUrl: string, req: RawRequest): Promise<RawResponse> {
  const u = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const sock = connect({ host: u.hostname, port: Number(u.port) });
    const chunks: Buffer[] = [];
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => resolve(parse(Buffer.concat(chunks))));
    const body = req.body === undefined ? undefined : Buffer.from(req.body);
    const headers: Record<string, string> = {
      host: u.host,
      connection: 'close',
      ...(body ? { 'content-length': String(body.length) } : {}),
      ...(req.headers ?? {}),
    };
    const head = `${req.method} ${req.target} HTTP/1.1\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}\r\n`;
    sock.write(Buffer.concat([Buffer.from(head, 'utf8'), ...(body ? [body] : [])]));
  });
}
