import type { Config } from '../config/load.js';
import type { Logger } from '../log/logger.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import { canonicalJson } from '../result-cache/cache-key.js';
import { createResultCache } from '../result-cache/result-cache.js';
import type { Storage } from '../storage/index.js';
import type { ScreenshotRouteDeps } from './screenshot-routes.js';

/**
 * The S3 tier's calls are bounded well below any render: a lookup that S3 does not answer in time is a miss, and
 * one failure skips the tier for a while. One attempt each: a retry would only stretch the wait of a cache.
 */
const s3TierTuning = { maxAttempts: 1, connectTimeoutMs: 1_000, idleTimeoutMs: 2_000 };
const lookupTimeoutMs = 1_500;
const putTimeoutMs = 30_000;
const maxPutsInFlight = 8;
const backoffMs = 5_000;

/**
 * The node's result cache from its configuration: memory always, S3 when a bucket and a cache prefix are set (the
 * S3 client is loaded only then).
 */
export async function createNodeResultCache(
  config: Config,
  deps: { storage: Storage | null; metrics: NodeMetrics; log: Logger; nodeId: string },
): Promise<NonNullable<ScreenshotRouteDeps['resultCache']>> {
  const s3 =
    config.S3_BUCKET && config.CACHE_S3_PREFIX
      ? (await import('../result-cache/s3-tier.js')).createS3Tier({
          client: (await import('../storage/s3-client.js')).createS3Client(config, s3TierTuning),
          bucket: config.S3_BUCKET,
          prefix: [config.S3_PREFIX, config.CACHE_S3_PREFIX].filter(Boolean).join('/'),
          storePrefix: config.S3_PREFIX,
          publicUrl: config.S3_PUBLIC_URL,
          presignTtlSeconds: config.S3_PRESIGN_TTL_S,
          lookupTimeoutMs,
          putTimeoutMs,
          maxPutsInFlight,
          backoffMs,
          log: deps.log,
          metrics: deps.metrics,
        })
      : null;
  // What decides an image besides its options: nodes that differ in it keep apart in a shared bucket.
  const scope = canonicalJson({
    maxPageHeight: config.MAX_PAGE_HEIGHT,
    maxPixels: config.MAX_PIXELS,
    allowPrivate: config.ALLOW_PRIVATE,
    allowHosts: config.ALLOW_HOSTS,
    denyHosts: config.DENY_HOSTS,
  });
  const cache = createResultCache({ memoryBytes: config.CACHE_MEMORY_BYTES, s3, scope, metrics: deps.metrics });
  return { cache, store: deps.storage ? { storage: deps.storage, s3, nodeId: deps.nodeId } : null };
}
