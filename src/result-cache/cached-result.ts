import { createHash } from 'node:crypto';
import type { ScreenshotResult } from '../pipeline/render-service.js';

/** A rendered image as the result cache keeps it, with what its answer says besides the bytes. */
export interface CachedResult {
  image: Buffer;
  contentType: string;
  /** A strong ETag, quoted: a digest of the image. */
  etag: string;
  /** When it was rendered (epoch ms): its Age counts from here. */
  renderedAt: number;
  truncated: boolean;
  /** The status of the page's own document, for X-Shotfleet-Target-Status. */
  targetStatus?: number;
  /** Captured short of its waits (bestEffort): handed to requests waiting for this render, never kept. */
  bestEffort: boolean;
  /** Where the S3 tier holds it, once S3 confirmed it. */
  s3Key?: string;
}

/** A strong ETag: the image's SHA-256, so equal bytes have equal tags on every node. */
export function imageEtag(image: Buffer): string {
  return `"${createHash('sha256').update(image).digest('base64url')}"`;
}

export function cachedResultOf(result: ScreenshotResult, renderedAt: number): CachedResult {
  return {
    image: result.image,
    contentType: result.contentType,
    etag: imageEtag(result.image),
    renderedAt,
    truncated: result.truncated,
    targetStatus: result.targetStatus,
    bestEffort: result.bestEffort,
  };
}
