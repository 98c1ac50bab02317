/**
 * CIDR blocks as security-group rules use them: parsed strictly, written in
 * one canonical form, so that Git and AWS spell the same block the same way
 * (`2001:DB8::/32` from the API and `2001:db8::/32` from Git are one block).
 *
 * Host bits must be zero: `10.0.0.1/8` is almost always a typo for a single
 * host or a network, and steward will not guess which.
 */

export type CidrResult = { ok: true; cidr: string; family: 4 | 6 } | { ok: false; why: string };

const V4_OCTET = /^(0|[1-9][0-9]{0,2})$/;

function parseV4(addr: string): bigint | null {
  const parts = addr.split('.');
  if (parts.length !== 4) return null;
  let n = 0n;
  for (const p of parts) {
    if (!V4_OCTET.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = (n << 8n) | BigInt(v);
  }
  return n;
}

function formatV4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
}

function parseV6(addr: string): bigint | null {
  if (addr.length === 0 || /[^0-9a-fA-F:.]/.test(addr)) return null;
  const halves = addr.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const items = s.split(':');
    for (const [i, item] of items.entries()) {
      if (item.includes('.')) {
        // an embedded IPv4 address, only as the last item
        const v4 = i === items.length - 1 ? parseV4(item) : null;
        if (v4 === null) return null;
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(item)) out.push(Number.parseInt(item, 16));
      else return null;
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  return all.reduce((n, g) => (n << 16n) | BigInt(g), 0n);
}

/** RFC 5952: lower case, no leading zeros, the longest run (≥ 2) of zero groups as `::`. */
function formatV6(n: bigint): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(16 * (7 - i))) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestLen < 2) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** Parses an IPv4 or IPv6 CIDR block and returns its canonical spelling. */
export function parseCidr(text: string): CidrResult {
  const slash = text.indexOf('/');
  if (slash < 0) return { ok: false, why: 'needs a prefix length, e.g. 10.0.0.0/8 or 203.0.113.7/32' };
  const addr = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  const family: 4 | 6 = addr.includes(':') ? 6 : 4;
  const bits = family === 4 ? 32 : 128;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > bits)
    return { ok: false, why: `has an invalid prefix length "/${lenText}" (0-${bits} for IPv${family})` };
  const len = BigInt(lenText);
  const n = family === 4 ? parseV4(addr) : parseV6(addr);
  if (n === null) return { ok: false, why: `has an invalid IPv${family} address "${addr}"` };
  const hostMask = (1n << (BigInt(bits) - len)) - 1n;
  const network = n & ~hostMask;
  const canonical = `${family === 4 ? formatV4(network) : formatV6(network)}/${lenText}`;
  if ((n & hostMask) !== 0n) return { ok: false, why: `has host bits set; the network is ${canonical}` };
  return { ok: true, cidr: canonical, family };
}

/** The canonical spelling of a CIDR block read from the API (left as it is if it does not parse). */
export function canonicalCidr(text: string): string {
  const r = parseCidr(text);
  return r.ok ? r.cidr : text;
}
