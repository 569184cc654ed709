import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../log/logger.js';

/**
 * Writes and deletes a tiny probe object: proves the bucket exists and these credentials may write to it
 * (HeadBucket would need s3:ListBucket, which an upload-only policy need not grant).
 */
export async function checkBucket(client: S3Client, bucket: string, prefix: string, log: Logger, timeoutMs: number): Promise<void> {
  const key = `${prefix ? `${prefix}/` : ''}.shotfleet-write-check`;
  const where = `s3://${bucket}/${key}`;
  try {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from('ok'), ContentType: 'text/plain' }), {
      abortSignal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new Error(`S3 check failed: cannot write ${where}: ${explain(err, bucket)}`);
  }
  try {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    log.warn({ err, key }, 'S3 check: could not delete the probe object (uploads are unaffected; grant s3:DeleteObject to clean it up)');
  }
}

function explain(err: unknown, bucket: string): string {
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const code = e.code ?? e.name ?? '';
  if (code === 'NoSuchBucket' || status === 404) return `bucket "${bucket}" does not exist; create it or fix SHOTFLEET_S3_BUCKET`;
  if (status === 403 || code === 'AccessDenied' || code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch') {
    return `access denied (${code}); give these credentials s3:PutObject on the bucket, or fix AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_PROFILE`;
  }
  if (code === 'CredentialsProviderError' || /credential/i.test(e.message ?? '')) {
    return `no AWS credentials found (${e.message}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance role`;
  }
  if (code === 'TimeoutError' || code === 'AbortError') return 'S3 did not answer in time; check SHOTFLEET_S3_ENDPOINT and the network';
  if (/^E[A-Z]+$/.test(code) || /ECONN|ENOTFOUND|EAI_AGAIN/.test(e.message ?? '')) {
    return `cannot reach S3 (${e.message ?? code}); check SHOTFLEET_S3_ENDPOINT / SHOTFLEET_S3_REGION and that S3 is up`;
  }
  return `${code || 'error'}${status ? ` (HTTP ${status})` : ''}: ${e.message ?? String(err)}`;
}
