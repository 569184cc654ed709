import { timingSafeEqual, createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { ShotError } from '../errors/shot-error.js';
import { verifySignedQuery } from '../signing/signature.js';

/** Constant-time comparison; hashing first makes the lengths equal so length leaks nothing either. */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The token a request carries: `Authorization: Bearer <t>` or the header `token: <t>`. */
export function presentedToken(header: (name: string) => string | undefined): string | undefined {
  const auth = header('authorization');
  if (auth?.toLowerCase().startsWith('bearer ')) return auth.slice(7).trim();
  return header('token') ?? undefined;
}

export interface AuthOptions {
  token?: string;
  metricsToken?: string;
  /** HMAC key of signed GET /screenshot links (SHOTFLEET_SIGNING_KEY). */
  signingKey?: string;
  /** Paths anyone may read. */
  open: readonly string[];
}

/**
 * With a token configured, every route but the open ones needs it. /metrics is open unless a metrics
 * token is set, and then needs that one: a Prometheus scraper never holds the render token.
 */
export function requireToken(opts: AuthOptions): MiddlewareHandler {
  return async (c, next) => {
    const path = c.req.path;
    if (c.req.method === 'GET' && path === '/screenshot') {
      const query = new URL(c.req.url).searchParams;
      if (query.has('signature') || query.has('expires')) {
        // A signed link stands on its own, token or not: a bad one is refused even where no token is needed.
        if (!opts.signingKey) throw new ShotError('unauthorized', 'this node does not accept signed links: it has no SHOTFLEET_SIGNING_KEY');
        const verdict = verifySignedQuery(query, opts.signingKey, Date.now() / 1000);
        if (!verdict.ok) throw new ShotError('unauthorized', `${verdict.reason}; sign a new link with "shotfleet sign URL"`);
        return next();
      }
    }
    const given = () => presentedToken((name) => c.req.header(name));
    if (path === '/metrics') {
      if (!opts.metricsToken || tokenMatches(given(), opts.metricsToken)) return next();
    } else if (!opts.token || opts.open.includes(path) || tokenMatches(given(), opts.token)) {
      return next();
    }
    throw new ShotError('unauthorized', 'missing or wrong token: send "Authorization: Bearer <token>" or a "token" header');
  };
}
