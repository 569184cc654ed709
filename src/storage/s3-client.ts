import { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/load.js';

export interface ClientTuning {
  /** Attempts per S3 request, first included; the SDK retries 5xx, throttling and connection errors with jittered backoff. */
  maxAttempts: number;
  connectTimeoutMs: number;
  /** Longest silence on a connection before the attempt counts as failed (and is retried). */
  idleTimeoutMs: number;
}

/**
 * The S3 client for the configured bucket. Credentials: explicit AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from
 * the environment the node was given, else the SDK's default chain (profiles, web identity, ECS, EC2 metadata).
 */
export function createS3Client(config: Config, tuning: ClientTuning): S3Client {
  const env = config.env;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  return new S3Client({
    region: config.S3_REGION ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    endpoint: config.S3_ENDPOINT,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN } : undefined,
    maxAttempts: tuning.maxAttempts,
    // Integrity comes from Content-MD5 on single PUTs and per-part CRC32 on multipart uploads, both over Buffer
    // bodies. The SDK's default streamed aws-chunked checksums are corrupted by some S3-compatible stores.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: tuning.connectTimeoutMs, requestTimeout: tuning.idleTimeoutMs },
  });
}
