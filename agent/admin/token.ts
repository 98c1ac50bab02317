/**
 * The admin bearer token and the push-webhook secret. Both are read before
 * anything is created: the token file is only generated (mode 0600) once the
 * API is listening, so a start that fails leaves nothing behind. Compared in
 * constant time.
 */
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StewardError } from '../../core/errors.js';
import { verify } from '../../core/hmac.js';
import type { Logger } from '../log.js';
import { nodeCrypto } from '../../core/builtins.js';

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | null)?.code;

/** The token in `path`, or null if the file does not exist yet (then `newToken` makes one). */
export async function readToken(path: string, log: Logger): Promise<string | null> {
  let text: string;
  try {
    const st = await stat(path);
    if (!st.isFile())
      throw new StewardError(
        'ADMIN_TOKEN_UNREADABLE',
        `admin.tokenFile ${path} is not a regular file (a directory?); remove it so a token is generated there, or point admin.tokenFile at a file`,
        { path },
      );
    if ((st.mode & 0o077) !== 0)
      log.warn({ path }, 'admin token file is readable by group or others; chmod 600 it');
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (e instanceof StewardError) throw e;
    if (errno(e) === 'ENOENT') return null;
    throw new StewardError(
      'ADMIN_TOKEN_UNREADABLE',
      `cannot read admin.tokenFile ${path}: ${errno(e) ?? (e as Error).message}; fix its permissions or its parent directory`,
      { path },
    );
  }
  const token = text.trim();
  if (token.length < 16)
    throw new StewardError(
      'SECRET_READ',
      `admin.tokenFile ${path} holds a token shorter than 16 characters; write a longer one`,
    );
  return token;
}

export function newToken(): string {
  return nodeCrypto().randomBytes(32).toString('hex');
}

/** Writes a generated token to `path` (mode 0600), never over a file someone just wrote. */
export async function writeNewToken(path: string, token: string, log: Logger): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const h = await open(path, 'wx', 0o600);
  try {
    await h.writeFile(`${token}\n`);
    await h.sync();
  } finally {
    await h.close();
  }
  log.warn({ path }, 'generated an admin token (read it from this file)');
}

/** The webhook HMAC key; an empty file is an error, never "webhook silently off". */
export async function readWebhookSecret(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new StewardError(
      'SECRET_READ',
      `cannot read admin.webhookSecretFile ${path}: ${errno(e) ?? (e as Error).message}; create it or fix its permissions`,
      { path },
    );
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret.trim() === '')
    throw new StewardError(
      'WEBHOOK_SECRET_EMPTY',
      `admin.webhookSecretFile ${path} is empty; write the webhook's secret into it, or remove admin.webhookSecretFile to disable the push webhook`,
      { path },
    );
  return secret;
}

const digest = (s: string): Buffer => nodeCrypto().createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison (hashing first makes the lengths equal). */
export function tokensEqual(given: string, expected: string): boolean {
  return nodeCrypto().timingSafeEqual(digest(given), digest(expected));
}

/** The shape of GitHub's `X-Hub-Signature-256` header: checked before any body byte is read. */
export function wellFormedHubSignature(header: unknown): header is string {
  return typeof header === 'string' && /^sha256=[0-9a-f]{64}$/i.test(header);
}

/** GitHub's `X-Hub-Signature-256: sha256=<hex>` over the raw body, checked in constant time. */
export function verifyHubSignature(raw: Buffer, header: string | undefined, secret: string): boolean {
  return wellFormedHubSignature(header) && verify(raw, header, secret);
}
