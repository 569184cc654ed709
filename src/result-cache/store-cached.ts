import { imageSize } from 'image-size';
import type { Logger } from '../log/logger.js';
import type { RenderOptions } from '../request/options.js';
import type { ScreenshotResult } from '../pipeline/render-service.js';
import type { Storage, StoredObject } from '../storage/index.js';
import type { CachedResult } from './cached-result.js';
import type { S3Tier } from './s3-tier.js';

export type StoredBody = Extract<ScreenshotResult, { kind: 'stored' }>['body'];

export interface StoreCachedDeps {
  storage: Storage;
  s3: S3Tier | null;
  nodeId: string;
  log: Logger;
}

/**
 * `store: true` answered from the cache: the result is put where `store` puts images (at the client's key when it
 * gave one) and the answer links to it, as a render's would. A result the S3 tier holds is copied inside the
 * bucket (no bytes travel); any other is uploaded through the upload pool like a render's image.
 */
export async function storeCached(deps: StoreCachedDeps, result: CachedResult, options: RenderOptions, signal: AbortSignal): Promise<StoredBody> {
  const size = imageSize(result.image);
  const width = size.width ?? 0;
  const height = size.height ?? 0;
  const started = performance.now();
  const stored = await copyOrUpload(deps, result, options, { width, height }, signal);
  return {
    ...stored,
    format: options.format,
    width,
    height,
    timings: { queueMs: 0, renderMs: 0, uploadMs: Math.round(performance.now() - started) },
  };
}

async function copyOrUpload(
  deps: StoreCachedDeps,
  result: CachedResult,
  options: RenderOptions,
  size: { width: number; height: number },
  signal: AbortSignal,
): Promise<Omit<StoredObject, 'uploadMs'>> {
  if (result.s3Key && deps.s3) {
    try {
      const copied = await deps.s3.copyOut(result.s3Key, options.format, options.key, signal);
      return { ...copied, bytes: result.image.length };
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      // The bucket's lifecycle rule may have removed the kept copy since: upload the bytes instead.
      deps.log.warn({ err: (err as Error)?.name ?? String(err), key: result.s3Key }, 'copying a cached result failed; uploading it instead');
    }
  }
  const reservation = deps.storage.reserve(options.format, size.width * size.height);
  try {
    const { uploadMs: _uploadMs, ...stored } = await reservation.upload(
      {
        image: result.image,
        format: options.format,
        key: options.key,
        metadata: { sourceUrl: options.url, width: size.width, height: size.height, format: options.format, nodeId: deps.nodeId },
      },
      signal,
    );
    return stored;
  } finally {
    reservation.release();
  }
}
