import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The string a signed link's signature covers: every query parameter but `signature` (so `expires` too),
 * sorted by name then value, each name and value encoded with encodeURIComponent, as `name=value` joined by `&`.
 * Signer and node both parse the query with URLSearchParams, so how the link was escaped does not matter.
 */
export function canonicalQuery(params: URLSearchParams): string {
  const pairs = [...params].filter(([name]) => name !== 'signature');
  pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return pairs.map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`).join('&');
}

/** Hex HMAC-SHA256 of the canonical query under the signing key. */
export function signQuery(params: URLSearchParams, key: string): string {
  return createHmac('sha256', key).update(canonicalQuery(params)).digest('hex');
}

/** A copy of `link` carrying `expires` (unix seconds) and its `signature`; earlier ones are replaced. */
export function signLink(link: URL, key: string, expiresAt: number): URL {
  const signed = new URL(link);
  signed.searchParams.delete('signature');
  signed.searchParams.set('expires', String(expiresAt));
  signed.searchParams.set('signature', signQuery(signed.searchParams, key));
  return signed;
}

export type SignatureVerdict = { ok: true } | { ok: false; reason: string };

/** Checks a link's `expires` and `signature` against the key, in constant time. */
export function verifySignedQuery(params: URLSearchParams, key: string, nowSeconds: number): SignatureVerdict {
  const expires = params.get('expires');
  const given = params.get('signature') ?? '';
  if (params.getAll('signature').length !== 1 || params.getAll('expires').length !== 1 || !/^\d{1,12}$/.test(expires ?? '')) {
    return { ok: false, reason: 'a signed link carries one expires (unix seconds) and one signature' };
  }
  const mismatch = { ok: false, reason: 'the signature does not match the link' } as const;
  if (!/^[0-9a-f]{64}$/i.test(given)) return mismatch;
  if (!timingSafeEqual(Buffer.from(signQuery(params, key), 'hex'), Buffer.from(given, 'hex'))) return mismatch;
  if (Number(expires) <= nowSeconds) return { ok: false, reason: 'the signed link has expired' };
  return { ok: true };
}
