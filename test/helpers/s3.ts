import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: http.Server;
}
type S3rverClass = new (opts: Record<string, unknown>) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;

/** Credentials s3rver accepts (it checks no signatures); tests never use the SDK's default chain. */
export const s3rverEnv = {
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_EC2_METADATA_DISABLED: 'true',
};

/** A node's settings to store in this s3rver: its bucket, path-style addressing, and s3rver's credentials. */
export function s3NodeEnv(s3: { bucket: string; endpoint: string }): Record<string, string> {
  return {
    ...s3rverEnv,
    SHOTFLEET_S3_BUCKET: s3.bucket,
    SHOTFLEET_S3_ENDPOINT: s3.endpoint,
    SHOTFLEET_S3_FORCE_PATH_STYLE: 'true',
    SHOTFLEET_S3_REGION: 'us-east-1',
  };
}

export interface RunningS3 {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  bucket: string;
  /** A plain client straight to s3rver, for reading back what was stored. */
  client: S3Client;
  getObject(key: string): Promise<{ body: Buffer; contentType?: string; metadata: Record<string, string> }>;
  exists(key: string): Promise<boolean>;
  /** Every object key in the bucket (read from s3rver's directory). */
  keys(): Promise<string[]>;
  stop(): Promise<void>;
}

/** A client for s3rver at `endpoint` (its fixed credentials; checksums only where required: see FIELD-NOTES). */
export function s3rverClient(endpoint: string, maxAttempts?: number): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts,
  });
}

/** s3rver on loopback with one bucket, its files in a fresh temp directory removed on stop. */
export async function startS3(bucket = 'shots'): Promise<RunningS3> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'shotfleet-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = s3rverClient(endpoint);
  return {
    endpoint,
    bucket,
    client,
    async getObject(key) {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return { body: Buffer.from(await out.Body!.transformToByteArray()), contentType: out.ContentType, metadata: out.Metadata ?? {} };
    },
    async exists(key) {
      try {
        await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
        throw err;
      }
    },
    async keys() {
      // s3rver keeps each object as <key>._S3rver_object next to its metadata files.
      const root = path.join(directory, bucket);
      const entries = await fs.readdir(root, { recursive: true }).catch(() => [] as string[]);
      return entries
        .filter((e) => e.endsWith('._S3rver_object'))
        .map((e) => e.slice(0, -'._S3rver_object'.length))
        .sort();
    },
    async stop() {
      client.destroy();
      server.httpServer?.closeAllConnections();
      await server.close();
      await fs.rm(directory, { recursive: true, force: true });
    },
  };
}

export type Fault = '500' | 'reset';

export interface FaultProxy {
  /** http://127.0.0.1:PORT: use it as the S3 endpoint. */
  url: string;
  /** Added before every PUT is passed on (uploads, multipart parts). */
  putLatencyMs: number;
  /** PUTs wait (after any latency) until the returned function is called: an S3 as slow as a test needs. */
  holdPuts(): () => void;
  /** The next `count` PUTs fail: an S3 500 InternalError, or a reset connection. */
  failPuts(count: number, fault: Fault): void;
  /** PUT requests seen, faulted ones included. */
  readonly puts: number;
  readonly faultsInjected: number;
  /** Headers of the last PUT passed on to S3. */
  readonly lastPutHeaders: http.IncomingHttpHeaders;
  close(): Promise<void>;
}

/** A tiny HTTP proxy on loopback in front of an S3 endpoint that slows or breaks PUTs on demand. */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  let pending: { count: number; fault: Fault } = { count: 0, fault: '500' };
  let puts = 0;
  let faults = 0;
  let lastPutHeaders: http.IncomingHttpHeaders = {};
  let gate: Promise<void> = Promise.resolve();
  let openGate = () => {};
  const proxy: Omit<FaultProxy, 'url' | 'close'> & { putLatencyMs: number } = {
    putLatencyMs: 0,
    holdPuts() {
      openGate();
      let open!: () => void;
      gate = new Promise<void>((resolve) => (open = resolve));
      openGate = open;
      return open;
    },
    failPuts(count, fault) {
      pending = { count, fault };
    },
    get puts() {
      return puts;
    },
    get faultsInjected() {
      return faults;
    },
    get lastPutHeaders() {
      return lastPutHeaders;
    },
  };

  const server = http.createServer(async (req, res) => {
    const isPut = req.method === 'PUT';
    if (isPut) {
      puts++;
      if (pending.count > 0) {
        pending.count--;
        faults++;
        if (pending.fault === 'reset') {
          req.socket.destroy();
          return;
        }
        req.resume();
        req.on('end', () => {
          res.writeHead(500, { 'Content-Type': 'application/xml' });
          res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>');
        });
        return;
      }
      lastPutHeaders = req.headers;
      if (proxy.putLatencyMs > 0) await new Promise((r) => setTimeout(r, proxy.putLatencyMs));
      await gate;
    }
    const forward = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(proxy, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        openGate(); // let held PUTs go
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

/** A loopback port nothing listens on: an S3 endpoint that is down. */
export async function deadEndpoint(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
