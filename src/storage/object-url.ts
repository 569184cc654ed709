import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

/** The link a client gets: SHOTFLEET_S3_PUBLIC_URL + key when set, else a presigned GET valid for ttlSeconds. */
export function objectUrl(client: S3Client, bucket: string, key: string, opts: { publicUrl?: string; ttlSeconds: number }): Promise<string> {
  if (opts.publicUrl) {
    const path = key.split('/').map(encodeURIComponent).join('/');
    return Promise.resolve(`${opts.publicUrl.replace(/\/+$/, '')}/${path}`);
  }
  return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: opts.ttlSeconds });
}
