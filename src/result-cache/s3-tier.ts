import { createHash } from 'node:crypto';
import { CopyObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { abortable } from '../async/abortable.js';
import type { Logger } from '../log/logger.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import { contentTypes, objectKey } from '../storage/keys.js';
import { objectUrl } from '../storage/object-url.js';
import type { ImageFormat, StoredObject } from '../storage/types.js';
import { type CachedResult, imageEtag } from './cached-result.js';

export interface S3TierOptions {
  client: S3Client;
  bucket: string;
  /** Where results go in the bucket: SHOTFLEET_S3_PREFIX/SHOTFLEET_CACHE_S3_PREFIX. */
  prefix: string;
  /** SHOTFLEET_S3_PREFIX: where `store` copies a result to. */
  storePrefix: string;
  publicUrl?: string;
  presignTtlSeconds: number;
  /** Longest a lookup may take before it counts as a miss. */
  lookupTimeoutMs: number;
  /** Longest a result's upload may take; it runs after the answer. */
  putTimeoutMs: number;
  /** Uploads at once; past it a result stays in memory only (its bytes are not held for S3 meanwhile). */
  maxPutsInFlight: number;
  /** After a failed lookup, lookups are skipped this long, so a broken S3 costs one bounded wait, not one per request. */
  backoffMs: number;
  log: Logger;
  metrics: NodeMetrics;
}

export interface S3Tier {
  /** The result S3 holds for `key`, or null: when it has none, and when S3 fails or is slow (a miss, never an error). */
  get(key: string, signal: AbortSignal): Promise<CachedResult | null>;
  /** Starts keeping `result` in S3 and returns at once; `result.s3Key` is set once S3 confirmed it. */
  put(key: string, result: CachedResult): void;
  /** Copies a kept result to where `store` puts images (the client's key, or a new one) and links to the copy. */
  copyOut(s3Key: string, format: ImageFormat, clientKey: string | undefined, signal: AbortSignal): Promise<Omit<StoredObject, 'uploadMs' | 'bytes'>>;
  /** False while lookups are skipped after a failure. */
  available(): boolean;
}

/**
 * The shared tier: results in the bucket, so one node's render is every node's hit. It is a cache, so it only
 * ever makes a request faster: each call is bounded in time, and a failure is a miss (logged and counted).
 */
export function createS3Tier(o: S3TierOptions): S3Tier {
  let putsInFlight = 0;
  let skipUntil = 0;
  const keyOf = (key: string) => `${o.prefix}/${key}`;

  /** A lookup that failed skips lookups for a while: they are on the request's path. Uploads are not, and go on. */
  function failed(operation: 'get' | 'put', err: unknown, key: string): void {
    const firstOfAStreak = Date.now() >= skipUntil;
    if (operation === 'get') skipUntil = Date.now() + o.backoffMs;
    o.metrics.resultCacheS3Failures.inc({ operation });
    const e = err as { name?: string; message?: string };
    if (firstOfAStreak) {
      o.log.warn(
        { operation, key, err: e?.name ?? e?.message ?? String(err), skipLookupsMs: operation === 'get' ? o.backoffMs : 0 },
        "the result cache's S3 tier failed; answering from memory and renders meanwhile",
      );
    }
  }

  return {
    available: () => Date.now() >= skipUntil,

    async get(key, signal) {
      if (Date.now() < skipUntil) return null;
      const s3Key = keyOf(key);
      const bound = AbortSignal.timeout(o.lookupTimeoutMs);
      const stop = AbortSignal.any([signal, bound]);
      try {
        const read = (async () => {
          const out = await o.client.send(new GetObjectCommand({ Bucket: o.bucket, Key: s3Key }), { abortSignal: stop });
          return { out, image: Buffer.from(await out.Body!.transformToByteArray()) };
        })();
        const { out, image } = await abortable(read, stop);
        const renderedAt = Number(out.Metadata?.['rendered-at']);
        if (!Number.isFinite(renderedAt) || !out.ContentType) return null;
        const targetStatus = Number(out.Metadata?.['target-status']);
        return {
          image,
          contentType: out.ContentType,
          etag: imageEtag(image),
          renderedAt,
          truncated: out.Metadata?.truncated === 'true',
          targetStatus: Number.isInteger(targetStatus) ? targetStatus : undefined,
          bestEffort: false,
          s3Key,
        };
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status !== 404) failed('get', bound.aborted ? new Error(`no answer within ${o.lookupTimeoutMs} ms`) : err, s3Key);
        return null;
      }
    },

    put(key, result) {
      if (putsInFlight >= o.maxPutsInFlight) return;
      const s3Key = keyOf(key);
      putsInFlight++;
      const metadata: Record<string, string> = { 'rendered-at': String(result.renderedAt), truncated: String(result.truncated) };
      if (result.targetStatus !== undefined) metadata['target-status'] = String(result.targetStatus);
      o.client
        .send(
          new PutObjectCommand({
            Bucket: o.bucket,
            Key: s3Key,
            Body: result.image,
            ContentType: result.contentType,
            ContentMD5: createHash('md5').update(result.image).digest('base64'),
            Metadata: metadata,
          }),
          { abortSignal: AbortSignal.timeout(o.putTimeoutMs) },
        )
        .then(
          () => {
            result.s3Key = s3Key;
          },
          (err) => failed('put', err, s3Key),
        )
        .finally(() => putsInFlight--);
    },

    async copyOut(s3Key, format, clientKey, signal) {
      const key = objectKey(o.storePrefix, format, clientKey);
      const source = `${o.bucket}/${s3Key.split('/').map(encodeURIComponent).join('/')}`;
      const out = await o.client.send(
        new CopyObjectCommand({ Bucket: o.bucket, Key: key, CopySource: source, ContentType: contentTypes[format], MetadataDirective: 'REPLACE' }),
        { abortSignal: signal },
      );
      const url = await objectUrl(o.client, o.bucket, key, { publicUrl: o.publicUrl, ttlSeconds: o.presignTtlSeconds });
      return { bucket: o.bucket, key, url, etag: (out.CopyObjectResult?.ETag ?? '').replace(/^"|"$/g, '') };
    },
  };
}
