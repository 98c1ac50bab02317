/**
 * The admin bearer token: read from `admin.tokenFile`, or generated there
 * (mode 0600) on first start. Compared in constant time.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StewardError } from '../../core/errors.js';
import type { Logger } from '../log.js';

export async function loadOrCreateToken(path: string, log: Logger): Promise<string> {
  try {
    const token = (await readFile(path, 'utf8')).trim();
    if (token.length < 16)
      throw new StewardError(
        'SECRET_READ',
        `admin.tokenFile ${path} holds a token shorter than 16 characters; write a longer one`,
      );
    const { mode } = await stat(path);
    if ((mode & 0o077) !== 0)
      log.warn({ path }, 'admin token file is readable by group or others; chmod 600 it');
    return token;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('hex');
  const h = await open(path, 'wx', 0o600); // never overwrite a token someone just wrote
  try {
    await h.writeFile(`${token}\n`);
    await h.sync();
  } finally {
    await h.close();
  }
  log.warn({ path }, 'generated an admin token (read it from this file)');
  return token;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison (hashing first makes the lengths equal). */
export function tokensEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** GitHub's `X-Hub-Signature-256: sha256=<hex>` over the raw body, checked in constant time. */
export function verifyHubSignature(raw: Buffer, header: string | undefined, secret: string): boolean {
  if (!header || !/^sha256=[0-9a-f]{64}$/i.test(header)) return false;
  const expected = createHmac('sha256', secret).update(raw).digest();
  const got = Buffer.from(header.slice(7), 'hex');
  return got.length === expected.length && timingSafeEqual(got, expected);
}
