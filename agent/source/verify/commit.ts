/**
 * The signed payload of a commit, cut from the raw commit object exactly the
 * way git does (commit.c parse_buffer_signed_by_header): the `gpgsig` header
 * and its continuation lines are the signature; they, and any other `gpgsig*`
 * header (e.g. `gpgsig-sha256`), are left out of the payload; every other byte
 * stays as it is.
 *
 * Use this on the raw object (isomorphic-git `readObject({format: 'content'})`,
 * `git cat-file commit`), NOT isomorphic-git's `readCommit().payload`: that one
 * only knows PGP armor (an SSH-signed commit's payload comes out mangled) and
 * normalises newlines, so it is not the bytes that were signed.
 */
import { nodeCrypto } from '../../../core/builtins.js';

export interface SignedCommit {
  oid: string;
  /** The bytes the signature covers. */
  payload: Buffer;
  /** The signature (the `gpgsig` header's value, unindented), or undefined for an unsigned commit. */
  gpgsig: string | undefined;
}

const HEADER = Buffer.from('gpgsig ', 'ascii');
const ANY_SIG = Buffer.from('gpgsig', 'ascii');

/** Splits a raw commit object into payload and signature. Pure; does not check the oid. */
export function splitCommitSignature(raw: Uint8Array): { payload: Buffer; gpgsig: string | undefined } {
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const payload: Buffer[] = [];
  const sig: Buffer[] = [];
  let inSignature = false;
  let otherSignature = false;
  let saw = false;
  let line = 0;
  while (line < buf.length) {
    const nl = buf.indexOf(0x0a, line);
    let next = nl === -1 ? buf.length : nl + 1;
    let sigStart = -1;
    if (inSignature && buf[line] === 0x20) sigStart = line + 1;
    else if (buf.subarray(line, line + HEADER.length).equals(HEADER)) {
      sigStart = line + HEADER.length;
      otherSignature = false;
    } else if (buf.subarray(line, line + ANY_SIG.length).equals(ANY_SIG)) otherSignature = true;
    else if (otherSignature && buf[line] !== 0x20) otherSignature = false;
    if (sigStart !== -1) {
      sig.push(buf.subarray(sigStart, next));
      saw = true;
      inSignature = true;
    } else {
      // The blank line ends the headers: the rest (the message) is payload as is.
      if (buf[line] === 0x0a) next = buf.length;
      if (!otherSignature) payload.push(buf.subarray(line, next));
      inSignature = false;
    }
    line = next;
  }
  return { payload: Buffer.concat(payload), gpgsig: saw ? Buffer.concat(sig).toString('utf8') : undefined };
}

/**
 * The signed commit `oid` from its raw object bytes, after checking that the
 * bytes ARE that object (SHA-1 of `commit <size>\0<raw>`), so a verification
 * can never be about other bytes than the commit that will be applied.
 * Returns null when they are not.
 */
export function signedCommit(oid: string, raw: Uint8Array): SignedCommit | null {
  const hash = nodeCrypto().createHash('sha1').update(`commit ${raw.byteLength}\0`).update(raw).digest('hex');
  if (hash !== oid.toLowerCase()) return null;
  return { oid, ...splitCommitSignature(raw) };
}

/** The committer time of a commit payload (seconds since the epoch), or null when there is none. */
export function committerTime(payload: Uint8Array): Date | null {
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('latin1');
  const end = text.indexOf('\n\n');
  const headers = (end === -1 ? text : text.slice(0, end)).split('\n');
  const committer = headers.find((h) => h.startsWith('committer '));
  const m = committer ? / (\d+) [+-]\d{4}$/.exec(committer) : null;
  return m ? new Date(Number(m[1]) * 1000) : null;
}
