import { timingSafeEqual, createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { ShotError } from '../errors/shot-error.js';
import { createKeySet, type ClientKey, type KeySet } from '../keys/key-set.js';
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

/** Where the accepted tokens come from: a node's key registry (reloadable), or one fixed token. */
export interface KeySource {
  /** True when a token is needed at all. */
  readonly required: boolean;
  current(): KeySet;
}

export interface AuthOptions {
  /** One token (the hub's); ignored when `keys` is given. */
  token?: string;
  /** A node's API keys (SHOTFLEET_KEYS_FILE and SHOTFLEET_TOKEN). */
  keys?: KeySource;
  metricsToken?: string;
  /** HMAC key of signed GET /screenshot links without `kid` (SHOTFLEET_SIGNING_KEY). */
  signingKey?: string;
  /** Paths anyone may read. */
  open: readonly string[];
}

/** What auth leaves for the routes: the key the request came with, if any. */
export type AuthEnv = { Variables: { client: ClientKey | undefined } };

const fixedKeys = (token: string | undefined): KeySource => {
  const keys = createKeySet([], token);
  return { required: token !== undefined, current: () => keys };
};

/**
 * With a token or keys configured, every route but the open ones needs one of them. /metrics is open unless a
 * metrics token is set, and then needs that one: a Prometheus scraper never holds the render token. The key a
 * request was accepted with (or its signed link's `kid`) is set as `client` for fair shares, limits and metrics.
 */
export function requireToken(opts: AuthOptions): MiddlewareHandler<AuthEnv> {
  const source = opts.keys ?? fixedKeys(opts.token);
  return async (c, next) => {
    const path = c.req.path;
    c.set('client', undefined);
    if (c.req.method === 'GET' && path === '/screenshot') {
      const query = new URL(c.req.url).searchParams;
      if (query.has('signature') || query.has('expires') || query.has('kid')) {
        // A signed link stands on its own, token or not: a bad one is refused even where no token is needed.
        c.set('client', signedLinkClient(query, source.current(), opts.signingKey));
        return next();
      }
    }
    const given = () => presentedToken((name) => c.req.header(name));
    if (path === '/metrics') {
      if (!opts.metricsToken || tokenMatches(given(), opts.metricsToken)) return next();
    } else if (opts.open.includes(path)) {
      return next();
    } else {
      const client = source.current().identify(given());
      if (client || !source.required) {
        c.set('client', client);
        return next();
      }
    }
    throw new ShotError('unauthorized', 'missing or wrong token: send "Authorization: Bearer <token>" or a "token" header');
  };
}

/** The key a signed link speaks for (undefined for one signed with SHOTFLEET_SIGNING_KEY), or a 401. */
function signedLinkClient(query: URLSearchParams, keys: KeySet, signingKey: string | undefined): ClientKey | undefined {
  const kid = query.getAll('kid');
  if (kid.length > 1) throw new ShotError('unauthorized', 'a signed link carries at most one kid');
  const key = kid.length === 1 ? keys.byName(kid[0]) : undefined;
  if (kid.length === 1 && !key) throw new ShotError('unauthorized', `this node has no key "${kid[0]}" (removed or never added): its links are revoked`);
  if (key && key.token === undefined) {
    throw new ShotError('unauthorized', `key "${key.client.name}" is stored as tokenSha256 only: its links need its token in clear in SHOTFLEET_KEYS_FILE`);
  }
  const hmacKey = key ? key.token : signingKey;
  if (!hmacKey) throw new ShotError('unauthorized', 'this node does not accept signed links: it has no SHOTFLEET_SIGNING_KEY');
  const verdict = verifySignedQuery(query, hmacKey, Date.now() / 1000);
  if (!verdict.ok) throw new ShotError('unauthorized', `${verdict.reason}; sign a new link with "shotfleet sign URL"`);
  return key?.client;
}
