import { Hono, type Context } from 'hono';
import { getCookie } from 'hono/cookie';
import { deadlineSignal } from '../async/abortable.js';
import { ShotError } from '../errors/shot-error.js';
import { presentedToken } from '../http/auth.js';
import type { ClientKey } from '../keys/key-set.js';
import { readJsonBody } from '../http/json-body.js';
import { createOptionsSchema, parseRenderOptions, type RenderLimits } from '../request/options.js';
import { queryParameters, queryToBody } from '../request/query-parameters.js';
import type { RenderService, ScreenshotResult, Timings } from '../pipeline/render-service.js';
import { type CachedResult, imageEtag } from '../result-cache/cached-result.js';
import type { ResultCache } from '../result-cache/result-cache.js';
import { storeCached, type StoreCachedDeps } from '../result-cache/store-cached.js';
import type { AppEnv } from './app-env.js';
import { ageSeconds, cacheControl, etagMatches } from './cache-headers.js';

export interface ScreenshotRouteDeps {
  render: RenderService;
  limits: RenderLimits;
  sessionCookie: string;
  /**
   * The 503 every request would get now (shutting down, out of memory, queue full), or null: asked before the
   * body is read or validated, so that shedding stays the cheapest thing the node does. Given the request's key:
   * a full queue sheds from the key holding the most of it.
   */
  refusalForAnyRequest(client?: ClientKey): ShotError | null;
  /** The result cache, and what `store: true` answered from it needs; none: every request renders. */
  resultCache?: { cache: ResultCache; store: Omit<StoreCachedDeps, 'log'> | null };
}

export function screenshotRoutes(deps: ScreenshotRouteDeps) {
  const schema = createOptionsSchema(deps.limits);
  const getParameters = queryParameters(schema);
  const app = new Hono<AppEnv>();

  app.post('/screenshot', async (c) => {
    const arrivedAt = Date.now();
    const refusal = refusalUnlessCached(c);
    return shoot(c, await readJsonBody(c, 'the options'), arrivedAt, refusal);
  });

  app.get('/screenshot', (c) => {
    const arrivedAt = Date.now();
    const refusal = refusalUnlessCached(c);
    return shoot(c, queryToBody(getParameters, c.req.query()), arrivedAt, refusal);
  });

  /**
   * Throws the node's refusal at once, unless the result cache might answer without a render: a request it
   * answers takes no page and no admission slot, so it is served while renders are shed (never while draining).
   */
  function refusalUnlessCached(c: Context<AppEnv>): ShotError | null {
    const refusal = deps.refusalForAnyRequest(c.get('client'));
    if (refusal && (refusal.code === 'draining' || !deps.resultCache?.cache.mayAnswer())) throw refusal;
    return refusal;
  }

  async function shoot(c: Context<AppEnv>, body: unknown, arrivedAt: number, refusal: ShotError | null): Promise<Response> {
    const options = parseRenderOptions(schema, body);
    const sessionId = getCookie(c, deps.sessionCookie);
    const request = { options, arrivedAt, signal: c.req.raw.signal, sessionId, client: c.get('client'), log: c.get('log') };
    // A session renders in a context its earlier requests changed (cookies, storage): its image is not the
    // options' alone, so it is neither answered from the cache nor kept.
    const cache = options.cacheTtl > 0 && sessionId === undefined ? deps.resultCache : undefined;
    if (!cache) {
      if (refusal) throw refusal;
      const result = await deps.render.screenshot(request);
      setResultHeaders(c, result);
      c.header('Cache-Control', 'no-store');
      if (result.kind === 'stored') return c.json(result.body);
      return imageAnswer(c, result.image, result.contentType, imageEtag(result.image));
    }

    await deps.render.check(options);
    const deadline = deadlineSignal(c.req.raw.signal, arrivedAt + options.timeout, deadlinePassed);
    try {
      const served = await cache.cache.serve({ options, signal: deadline.signal, mayRender: !refusal, render: () => deps.render.screenshot(request) });
      if (!served) throw refusal!;
      const { result, outcome } = served;
      const now = Date.now();
      c.header('X-Shotfleet-Cache', outcome);
      c.header('Age', String(ageSeconds(result, now)));
      c.header('Cache-Control', cacheControl({ cacheTtl: options.cacheTtl, ageSeconds: ageSeconds(result, now), ...clientOf(c), nowSeconds: now / 1000 }));
      // The session cookie decides whether a request is answered from the cache at all: a shared cache must key on it.
      c.header('Vary', 'Cookie');
      if (served.outcome === 'miss') {
        setResultHeaders(c, served.rendered);
        if (served.rendered.kind === 'stored') return c.json(served.rendered.body);
      } else {
        setCachedHeaders(c, result, served.outcome === 'hit' ? `hit-${served.tier}` : served.outcome, now - arrivedAt);
        // check() refused store: true on a node without S3 before the cache was asked.
        if (options.store) return c.json(await storeCached({ ...cache.store!, log: c.get('log') }, result, options, c.req.raw.signal));
      }
      return imageAnswer(c, result.image, result.contentType, result.etag);
    } finally {
      deadline.dispose();
    }
  }

  /** An image, or 304 with no body when the client already holds these bytes (If-None-Match names their ETag). */
  function imageAnswer(c: Context<AppEnv>, image: Buffer, contentType: string, etag: string): Response {
    c.header('ETag', etag);
    if (etagMatches(c.req.header('if-none-match'), etag)) return c.body(null, 304);
    return c.body(new Uint8Array(image), 200, { 'Content-Type': contentType });
  }

  return app;
}

/** Who asked, as far as caches between the node and the client care: a signed link, or a client with a token. */
function clientOf(c: Context<AppEnv>): { signedLinkExpires?: number; carriedToken: boolean } {
  const expires = c.req.method === 'GET' ? c.req.query('expires') : undefined;
  // Auth judged the link before the route ran: a request that reached here with `expires` is a valid signed link.
  if (expires !== undefined) return { signedLinkExpires: Number(expires), carriedToken: false };
  return { carriedToken: presentedToken((name) => c.req.header(name)) !== undefined };
}

function setResultHeaders(c: Context, result: ScreenshotResult): void {
  c.header('Server-Timing', serverTiming(result.timings));
  if (result.truncated) c.header('X-Shotfleet-Truncated', 'true');
  if (result.session) c.header('X-Shotfleet-Session', result.session);
  if (result.targetStatus !== undefined) c.header('X-Shotfleet-Target-Status', String(result.targetStatus));
  if (result.bestEffort) c.header('X-Shotfleet-Best-Effort', 'true');
}

/**
 * A result this request did not render: it waited `waitedMs` (a lookup, or an identical request's render) and
 * rendered nothing; `source` (hit-memory, hit-s3, coalesced) says where the result came from.
 */
function setCachedHeaders(c: Context, result: CachedResult, source: string, waitedMs: number): void {
  c.header('Server-Timing', `${serverTiming({ queueMs: waitedMs, renderMs: 0 })}, cache;desc=${source}`);
  if (result.truncated) c.header('X-Shotfleet-Truncated', 'true');
  if (result.targetStatus !== undefined) c.header('X-Shotfleet-Target-Status', String(result.targetStatus));
  if (result.bestEffort) c.header('X-Shotfleet-Best-Effort', 'true');
}

function serverTiming(t: Timings): string {
  const parts = [`queue;dur=${t.queueMs}`, `render;dur=${t.renderMs}`];
  if (t.uploadMs !== undefined) parts.push(`upload;dur=${t.uploadMs}`);
  return parts.join(', ');
}

function deadlinePassed(): ShotError {
  return new ShotError('timeout', 'the request did not get its answer before its deadline; raise timeout (up to SHOTFLEET_MAX_TIMEOUT_MS)');
}
