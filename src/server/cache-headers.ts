import type { CachedResult } from '../result-cache/cached-result.js';

export interface CachePolicyInput {
  cacheTtl: number;
  /** Whole seconds since the result was rendered. */
  ageSeconds: number;
  /** A signed link's `expires` (unix seconds): no cache may keep its answer past it. */
  signedLinkExpires?: number;
  /** The request carried a token: its answer is that client's alone. */
  carriedToken: boolean;
  nowSeconds: number;
}

/**
 * Cache-Control of an image answer: no-store when the request asked for no caching (cacheTtl 0); otherwise
 * fresh for what is left of its cacheTtl — public for a signed link (never past its expiry) or an open node,
 * private for a request that carried a token, which a shared cache must not hand to another client.
 */
export function cacheControl(p: CachePolicyInput): string {
  if (p.cacheTtl === 0) return 'no-store';
  const left = Math.max(0, p.cacheTtl - p.ageSeconds);
  if (p.signedLinkExpires !== undefined) return `public, max-age=${Math.max(0, Math.min(left, Math.floor(p.signedLinkExpires - p.nowSeconds)))}`;
  return `${p.carriedToken ? 'private' : 'public'}, max-age=${left}`;
}

export const ageSeconds = (result: CachedResult, now: number) => Math.max(0, Math.floor((now - result.renderedAt) / 1000));

/** If-None-Match names this ETag (weak comparison, as RFC 9110 asks for this header), or is `*`. */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === etag;
  });
}
