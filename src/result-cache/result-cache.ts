import { type ErrorCode, ShotError } from '../errors/shot-error.js';
import { abortable } from '../async/abortable.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import type { RenderOptions } from '../request/options.js';
import type { ScreenshotResult } from '../pipeline/render-service.js';
import { resultKey } from './cache-key.js';
import { type CachedResult, cachedResultOf } from './cached-result.js';
import { createMemoryTier } from './memory-tier.js';
import type { S3Tier } from './s3-tier.js';

const sameForIdenticalRequests = new Set<ErrorCode>(['selector_not_found', 'script_failed', 'target_http_error', 'url_forbidden', 'invalid_request']);

export type CacheOutcome = 'hit' | 'miss' | 'coalesced';
export const cacheOutcomes: readonly CacheOutcome[] = ['hit', 'miss', 'coalesced'];

export interface ResultCacheOptions {
  memoryBytes: number;
  s3: S3Tier | null;
  /** What decides an image besides its options on this node (limits, URL policy): see resultKey. */
  scope: string;
  metrics: NodeMetrics;
  now?: () => number;
}

export interface ServeRequest {
  options: RenderOptions;
  /** The request's own deadline and its client: a wait for another request's render ends with it. */
  signal: AbortSignal;
  /** False while the node sheds renders: only a kept result or a render already running can answer. */
  mayRender: boolean;
  render(): Promise<ScreenshotResult>;
}

export type Served =
  /** `tier`: where the kept result was found. */
  | { outcome: 'hit'; tier: 'memory' | 's3'; result: CachedResult }
  | { outcome: 'coalesced'; result: CachedResult }
  /** This request's own render: its answer is the render's (the stored object's JSON when it asked store). */
  | { outcome: 'miss'; result: CachedResult; rendered: ScreenshotResult };

export interface ResultCache {
  /** The answer to a request whose cacheTtl is above 0, or null when only a render could give it and `mayRender` is false. */
  serve(req: ServeRequest): Promise<Served | null>;
  /** Whether a request could be answered without a render now: asked before reading a request the node would shed. */
  mayAnswer(): boolean;
  s3: S3Tier | null;
}

/**
 * Identical requests are rendered once: a request is answered from memory, then from S3, then by waiting for an
 * identical request's render already running (holding no page and no admission slot, within its own deadline),
 * and only then by its own render, which it keeps. When the render it waited for fails, it looks again and one
 * waiter renders. Only successful images are kept, so an error is never answered from the cache.
 */
export function createResultCache(o: ResultCacheOptions): ResultCache {
  const now = o.now ?? Date.now;
  const memory = createMemoryTier(o.memoryBytes, now);
  const renders = new Map<string, Promise<CachedResult>>();
  o.metrics.bindSources({ resultCacheMemoryBytes: () => memory.bytes() });
  for (const result of cacheOutcomes) o.metrics.resultCacheRequests.inc({ result }, 0);

  async function serve(req: ServeRequest): Promise<Served | null> {
    const key = resultKey(req.options, o.scope);
    const served = await find(key, req.options.cacheTtl * 1000, req);
    if (served) o.metrics.resultCacheRequests.inc({ result: served.outcome });
    return served;
  }

  async function find(key: string, maxAgeMs: number, req: ServeRequest): Promise<Served | null> {
    for (;;) {
      const inMemory = memory.get(key, maxAgeMs);
      if (inMemory) return { outcome: 'hit', tier: 'memory', result: inMemory };
      let running = renders.get(key);
      if (!running && o.s3) {
        const fromS3 = await o.s3.get(key, req.signal);
        if (fromS3 && now() - fromS3.renderedAt < maxAgeMs) {
          memory.set(key, fromS3, maxAgeMs - (now() - fromS3.renderedAt));
          return { outcome: 'hit', tier: 's3', result: fromS3 };
        }
        running = renders.get(key);
      }
      if (running) {
        try {
          return { outcome: 'coalesced', result: await abortable(running, req.signal) };
        } catch (err) {
          if (req.signal.aborted) throw err;
          // The page's own answer (no such element, a throwing script, its HTTP status, the URL policy) would be
          // the same for an identical render: it is every waiter's answer. Anything else (a timeout, a shed, a
          // crash, a network fault) belongs to that render alone, and one waiter renders again.
          if (err instanceof ShotError && sameForIdenticalRequests.has(err.code)) throw err;
          continue;
        }
      }
      if (!req.mayRender) return null;
      return renderAndKeep(key, req);
    }
  }

  async function renderAndKeep(key: string, req: ServeRequest): Promise<Served> {
    let rendered: ScreenshotResult | undefined;
    const running = req.render().then((r) => {
      rendered = r;
      return cachedResultOf(r, now());
    });
    renders.set(key, running);
    try {
      const result = await running;
      // A best-effort capture stopped at this request's deadline, which is no part of the key: it is not what
      // another request would get.
      if (!result.bestEffort) {
        memory.set(key, result, req.options.cacheTtl * 1000);
        o.s3?.put(key, result);
      }
      return { outcome: 'miss', result, rendered: rendered! };
    } finally {
      if (renders.get(key) === running) renders.delete(key);
    }
  }

  return {
    serve,
    mayAnswer: () => memory.entries() > 0 || renders.size > 0 || (o.s3?.available() ?? false),
    s3: o.s3,
  };
}
