import { createHash } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

export interface PutImage {
  bucket: string;
  key: string;
  body: Buffer;
  contentType: string;
  metadata: Record<string, string>;
}

export interface PutTuning {
  /** Images at least this large go up as multipart uploads (lib-storage), in parts of this size (≥ 5 MiB). */
  multipartBytes: number;
}

/** Stores one image and resolves with its ETag once S3 confirmed it; S3 checks the bytes against a checksum. */
export async function putImage(client: S3Client, put: PutImage, tuning: PutTuning, signal: AbortSignal): Promise<string> {
  const params = { Bucket: put.bucket, Key: put.key, Body: put.body, ContentType: put.contentType, Metadata: put.metadata };
  if (put.body.length < tuning.multipartBytes) {
    const contentMD5 = createHash('md5').update(put.body).digest('base64');
    const out = await client.send(new PutObjectCommand({ ...params, ContentMD5: contentMD5 }), { abortSignal: signal });
    return unquote(out.ETag);
  }
  // lib-storage sends Buffer parts with a CRC32 each, and aborts the multipart upload when a part fails for good,
  // so no half-written object is left behind.
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal.aborted) onAbort();
    const upload = new Upload({
      client,
      params: { ...params, ChecksumAlgorithm: 'CRC32' },
      partSize: tuning.multipartBytes,
      queueSize: 2,
      abortController: controller,
    });
    const out = await upload.done();
    return unquote(out.ETag);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

const unquote = (etag: string | undefined) => (etag ?? '').replace(/^"|"$/g, '');
