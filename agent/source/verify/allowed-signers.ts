/**
 * git's `gpg.ssh.allowedSignersFile` format (ssh-keygen(1) "ALLOWED SIGNERS"):
 *
 *     principals [options] keytype base64-key [comment]
 *
 * `principals` is a comma-separated list (quoted if it holds spaces). Options,
 * comma-separated, case-insensitive:
 * - `namespaces="git,file"`: the namespaces the key may sign for (default: any);
 *   steward only accepts keys allowed for `git`.
 * - `valid-after="YYYYMMDD[HHMM[SS]][Z]"`, `valid-before=...`: the key's
 *   validity window. As in ssh-keygen, a time without `Z` is in the system's
 *   time zone; with `Z`, UTC.
 * - `cert-authority`: NOT supported. steward verifies plain keys only (no SSH
 *   certificates), so a `cert-authority` line is reported as a problem rather
 *   than silently trusting or ignoring it: list the signers' own keys instead.
 *
 * Blank lines and lines starting with `#` are ignored. Every bad line is a
 * `file:line:col` problem; callers must refuse the file when there are any.
 */
import type { SourceProblem } from '../../../core/errors.js';
import { decodeBase64, parseSshPublicKey, SshFormatError, type SshPublicKey } from './ssh.js';

export interface AllowedSigner {
  /** The principals as written (comma-separated patterns). */
  principals: string[];
  /** Namespaces the key may sign for; null = any. */
  namespaces: string[] | null;
  validAfter: Date | null;
  validBefore: Date | null;
  publicKey: SshPublicKey;
  /** Where it was read, for messages (`file:line`). */
  source: string;
}

export interface AllowedSignersParse {
  signers: AllowedSigner[];
  problems: SourceProblem[];
}

/** Reads one whitespace-delimited token from `line` at `pos`, honouring double quotes. */
function token(line: string, pos: number): { text: string; end: number } | { error: string } {
  let i = pos;
  let quoted = false;
  while (i < line.length) {
    const c = line[i]!;
    if (c === '"') quoted = !quoted;
    else if (!quoted && (c === ' ' || c === '\t')) break;
    i++;
  }
  if (quoted) return { error: 'unterminated quote' };
  return { text: line.slice(pos, i), end: i };
}

function skipSpace(line: string, pos: number): number {
  let i = pos;
  while (i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
  return i;
}

/** Splits on commas outside double quotes. */
function splitOptions(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const c of text) {
    if (c === '"') quoted = !quoted;
    if (c === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

const unquote = (s: string): string =>
  s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s;

/** `YYYYMMDD[HHMM[SS]][Z]` as ssh-keygen reads it; null when invalid. */
export function parseSshTime(text: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z?)$/.exec(text);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4] ?? '0', m[5] ?? '0', m[6] ?? '0'].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = m[7] === 'Z' ? new Date(Date.UTC(y, mo - 1, d, h, mi, s)) : new Date(y, mo - 1, d, h, mi, s);
  const back =
    m[7] === 'Z'
      ? [
          date.getUTCFullYear(),
          date.getUTCMonth() + 1,
          date.getUTCDate(),
          date.getUTCHours(),
          date.getUTCMinutes(),
        ]
      : [date.getFullYear(), date.getMonth() + 1, date.getDate(), date.getHours(), date.getMinutes()];
  if (back.join() !== [y, mo, d, h, mi].join() || s > 59) return null;
  return date;
}

type LineResult = { signer: AllowedSigner } | { col: number; message: string } | null;

/** Parses an allowed-signers file. `file` names it in problems. */
export function parseAllowedSigners(text: string, file: string): AllowedSignersParse {
  const signers: AllowedSigner[] = [];
  const problems: SourceProblem[] = [];
  text.split('\n').forEach((rawLine, index) => {
    const r = parseLine(rawLine.replace(/\r$/, ''), `${file}:${index + 1}`);
    if (r === null) return;
    if ('signer' in r) signers.push(r.signer);
    else problems.push({ file, line: index + 1, col: r.col + 1, message: r.message });
  });
  return { signers, problems };
}

/** One line: a signer, a problem at a 0-based column, or null for a blank or comment line. */
function parseLine(line: string, source: string): LineResult {
  const problem = (col: number, message: string): LineResult => ({ col, message });
  let pos = skipSpace(line, 0);
  if (pos === line.length || line[pos] === '#') return null;

  const principalsTok = token(line, pos);
  if ('error' in principalsTok) return problem(pos, principalsTok.error);
  const principals = unquote(principalsTok.text)
    .split(',')
    .map((p) => p.trim());
  if (principals.some((p) => p === '')) return problem(pos, 'empty principal');
  pos = skipSpace(line, principalsTok.end);

  let tok = token(line, pos);
  if ('error' in tok) return problem(pos, tok.error);
  let namespaces: string[] | null = null;
  let validAfter: Date | null = null;
  let validBefore: Date | null = null;
  // The key type is the token that the key blob names; anything before it is options.
  const looksLikeKeyType = (t: string): boolean => /^(ssh-|ecdsa-sha2-|sk-)/.test(t) && !t.includes('=');
  if (tok.text !== '' && !looksLikeKeyType(tok.text)) {
    const optionsCol = pos;
    for (const opt of splitOptions(tok.text)) {
      const eq = opt.indexOf('=');
      const name = (eq === -1 ? opt : opt.slice(0, eq)).toLowerCase();
      const value = eq === -1 ? null : unquote(opt.slice(eq + 1));
      if (name === 'cert-authority')
        return problem(
          optionsCol,
          "cert-authority is not supported (steward verifies plain keys, not SSH certificates); list the signers' keys instead",
        );
      if (value === null) return problem(optionsCol, `option "${name}" needs a value`);
      if (name === 'namespaces') namespaces = value.split(',').map((n) => n.trim());
      else if (name === 'valid-after' || name === 'valid-before') {
        const when = parseSshTime(value);
        if (!when) return problem(optionsCol, `${name}="${value}" is not a time (YYYYMMDD[HHMM[SS]][Z])`);
        if (name === 'valid-after') validAfter = when;
        else validBefore = when;
      } else
        return problem(optionsCol, `unknown option "${name}" (known: namespaces, valid-after, valid-before)`);
    }
    pos = skipSpace(line, tok.end);
    tok = token(line, pos);
    if ('error' in tok) return problem(pos, tok.error);
  }
  const keyType = tok.text;
  if (keyType === '') return problem(pos, 'missing key type and key');
  const keyTypeCol = pos;
  pos = skipSpace(line, tok.end);
  const keyTok = token(line, pos);
  if ('error' in keyTok || keyTok.text === '') return problem(pos, 'missing base64 key after the key type');
  const blob = decodeBase64(keyTok.text);
  if (!blob) return problem(pos, 'the key is not valid base64');
  let publicKey: SshPublicKey;
  try {
    publicKey = parseSshPublicKey(blob);
  } catch (e) {
    if (!(e instanceof SshFormatError)) throw e;
    return problem(pos, `bad key: ${e.message}`);
  }
  if (publicKey.type !== keyType)
    return problem(keyTypeCol, `key type "${keyType}" does not match the key, which is ${publicKey.type}`);
  return { signer: { principals, namespaces, validAfter, validBefore, publicKey, source } };
}
