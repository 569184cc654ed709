import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The token a request presents: `Authorization: Bearer <token>` or the header `token: <token>`.
 */
export function presentedToken(headers: { get(name: string): string | null | undefined }): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(headers.get('authorization') ?? '');
  return bearer?.[1]?.trim() ?? headers.get('token') ?? undefined;
}

/** Constant time whatever the lengths: both sides are hashed to the same size first. */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(presented ?? ''), digest(expected)) && presented !== undefined;
}
