import { withTimeout } from '../async/timeout.js';
import type { Config } from '../config/load.js';
import { shed, ShotError } from '../errors/shot-error.js';
import type { Logger } from '../log/logger.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import { checkBucket } from './check.js';
import { estimateImageBytes } from './estimate.js';
import { contentTypes, objectKey, validateKey } from './keys.js';
import { objectUrl } from './object-url.js';
import { putImage } from './put-image.js';
import { createS3Client } from './s3-client.js';
import type { ImageFormat, Storage, StorageStats, StoredObject, UploadRequest, UploadReservation } from './types.js';
import { createUploadPool, type Ticket } from './upload-pool.js';

export type { ImageFormat, Storage, StorageStats, StoredObject, UploadRequest, UploadReservation } from './types.js';

export interface StorageTuning {
  /** Attempts per S3 request (the SDK backs off with jitter between them). */
  maxAttempts: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** Longest an upload may take once it has a slot, retries included. */
  totalTimeoutMs: number;
  /** Images this large or larger use a multipart upload, in parts of this size (≥ 5 MiB). */
  multipartBytes: number;
  checkTimeoutMs: number;
}

export const defaultTuning: StorageTuning = {
  maxAttempts: 5,
  connectTimeoutMs: 3_000,
  idleTimeoutMs: 15_000,
  totalTimeoutMs: 60_000,
  multipartBytes: 16 * 1024 * 1024,
  checkTimeoutMs: 10_000,
};

/** The node's S3 storage and its upload pool; null (and no S3 client built) when SHOTFLEET_S3_BUCKET is unset. */
export function createStorage(config: Config, log: Logger, metrics: NodeMetrics, tuning: Partial<StorageTuning> = {}): Storage | null {
  if (!config.S3_BUCKET) return null;
  const bucket = config.S3_BUCKET;
  const t = { ...defaultTuning, ...tuning };
  const client = createS3Client(config, t);
  const pool = createUploadPool({ slots: config.UPLOADS, queueMax: config.UPLOAD_QUEUE_MAX, backlogMaxBytes: config.UPLOAD_BACKLOG_BYTES });
  const shutdown = new AbortController();
  let draining = false;
  let typicalUploadMs = 1_000;

  metrics.bindSources({
    uploadsInFlight: () => pool.stats().inFlight,
    uploadsMax: () => config.UPLOADS,
    uploadQueueLength: () => pool.stats().queued,
    uploadBacklogBytes: () => pool.stats().backlogBytes,
  });

  function stats(): StorageStats {
    const s = pool.stats();
    return {
      inFlight: s.inFlight,
      max: config.UPLOADS,
      queued: s.queued,
      queueMax: config.UPLOAD_QUEUE_MAX,
      backlogBytes: s.backlogBytes,
      backlogMaxBytes: config.UPLOAD_BACKLOG_BYTES,
    };
  }

  // The result cache's shared tier lives under S3_PREFIX/CACHE_S3_PREFIX: a client key there could overwrite a
  // cached result that another client's store: true is then copied from.
  const cachePrefix = config.CACHE_S3_PREFIX;
  function validateClientKey(key: string): void {
    validateKey(key);
    if (cachePrefix && (key === cachePrefix || key.startsWith(`${cachePrefix}/`))) {
      throw new ShotError('invalid_request', `key must not start with "${cachePrefix}/": the node keeps its result cache there; choose another key`, {
        field: 'key',
      });
    }
  }

  async function upload(ticket: Ticket, req: UploadRequest, signal?: AbortSignal): Promise<StoredObject> {
    try {
      if (req.key !== undefined) validateClientKey(req.key);
      const key = objectKey(config.S3_PREFIX, req.format, req.key);
      ticket.resize(req.image.length);
      const stop = AbortSignal.any([shutdown.signal, ...(signal ? [signal] : [])]);
      try {
        await ticket.acquireSlot(stop);
      } catch {
        throw cancelled(signal);
      }
      const started = performance.now();
      let etag: string;
      const deadline = AbortSignal.timeout(t.totalTimeoutMs);
      try {
        const attempt = AbortSignal.any([stop, deadline]);
        etag = await putImage(
          client,
          { bucket, key, body: req.image, contentType: contentTypes[req.format], metadata: objectMetadata(req.metadata) },
          t,
          attempt,
        );
      } catch (err) {
        metrics.uploadDuration.observe((performance.now() - started) / 1000);
        if (signal?.aborted || shutdown.signal.aborted) throw cancelled(signal);
        log.warn({ err, key, bytes: req.image.length }, 'upload failed');
        metrics.uploadFailures.inc();
        throw deadline.aborted
          ? new ShotError('upload_failed', `S3 did not confirm the upload within ${t.totalTimeoutMs / 1000}s; treat the image as not stored and retry later`, {
              reason: 'timeout',
            })
          : uploadFailed(err);
      }
      const uploadMs = performance.now() - started;
      metrics.uploadDuration.observe(uploadMs / 1000);
      typicalUploadMs = 0.8 * typicalUploadMs + 0.2 * uploadMs;
      const url = await objectUrl(client, bucket, key, { publicUrl: config.S3_PUBLIC_URL, ttlSeconds: config.S3_PRESIGN_TTL_S });
      log.debug({ key, bytes: req.image.length, uploadMs }, 'stored');
      return { bucket, key, url, etag, bytes: req.image.length, uploadMs: Math.round(uploadMs) };
    } finally {
      ticket.release();
    }
  }

  function cancelled(signal?: AbortSignal): ShotError {
    return new ShotError(
      'upload_failed',
      signal?.aborted ? 'the upload was cancelled because the request was abandoned' : 'the node shut down before S3 confirmed the upload; retry',
    );
  }

  return {
    bucket,
    validateKey: validateClientKey,
    reserve(format: ImageFormat, pixels: number): UploadReservation {
      // Every 503 is counted once, by the part that decided it.
      if (draining) {
        metrics.shedTotal.inc({ reason: 'draining' });
        throw shed('draining', 1);
      }
      const ticket = pool.reserve(estimateImageBytes(format, pixels));
      if (!ticket) {
        metrics.shedTotal.inc({ reason: 'upload_backlog' });
        const s = pool.stats();
        const waitSeconds = (typicalUploadMs / 1000) * Math.ceil((s.queued + s.inFlight + 1) / config.UPLOADS);
        throw shed(
          'upload_backlog',
          waitSeconds,
          `this node's S3 upload backlog is full (${s.queued} queued, ${s.backlogBytes} bytes held); retry in ${Math.max(1, Math.ceil(waitSeconds))}s or on another node`,
        );
      }
      let used = false;
      return {
        upload(req, signal) {
          if (used) return Promise.reject(new Error('upload() was already called on this reservation'));
          used = true;
          return upload(ticket, req, signal);
        },
        release: () => ticket.release(),
      };
    },
    check: () => checkBucket(client, bucket, config.S3_PREFIX, log, t.checkTimeoutMs),
    stats,
    async drain(graceMs: number) {
      draining = true;
      const drained = pool.whenIdle().then(() => true);
      const idle = await withTimeout(drained, graceMs, () => false);
      if (idle) log.info('uploads drained');
      else {
        log.warn(stats(), 'shutdown grace ended with uploads unfinished; cancelling them');
        shutdown.abort(new Error('shutdown'));
      }
      client.destroy();
    },
  };
}

/** S3 user metadata travels as HTTP headers: ASCII only, 2 KB in all, so long or non-ASCII values are escaped and cut. */
function objectMetadata(m: UploadRequest['metadata']): Record<string, string> {
  const ascii = (s: string, max: number) => s.replace(/[^\x20-\x7e]/g, (c) => encodeURIComponent(c)).slice(0, max);
  return {
    ...(m.sourceUrl ? { 'source-url': ascii(m.sourceUrl, 1024) } : {}),
    width: String(m.width),
    height: String(m.height),
    format: ascii(m.format, 16),
    node: ascii(m.nodeId, 256),
  };
}

function uploadFailed(err: unknown): ShotError {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number; attempts?: number } };
  const reason = e.code ?? e.name ?? 'error';
  const status = e.$metadata?.httpStatusCode;
  const attempts = e.$metadata?.attempts;
  return new ShotError(
    'upload_failed',
    `S3 did not store the image (${reason}${status ? `, HTTP ${status}` : ''}${attempts ? ` after ${attempts} attempts` : ''}); nothing was stored, retry later`,
    { reason, ...(status ? { s3Status: status } : {}), ...(attempts ? { attempts } : {}) },
  );
}
