import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import { loadConfig } from '../src/config/load.js';
import { ShotError } from '../src/errors/shot-error.js';
import { createLogger } from '../src/log/logger.js';
import { createNodeMetrics } from '../src/metrics/node-metrics.js';
import { createStorage, type Storage, type StorageTuning, type UploadRequest } from '../src/storage/index.js';
import { deadEndpoint, s3rverEnv, startFaultProxy, startS3, type FaultProxy, type RunningS3 } from './helpers/s3.js';

const log = createLogger('silent');

function noisePng(width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  randomBytes(width * height * 4).copy(png.data);
  return PNG.sync.write(png);
}

function request(image: Buffer, extra: Partial<UploadRequest> = {}): UploadRequest {
  return {
    image,
    format: 'png',
    metadata: { sourceUrl: 'http://127.0.0.1:9/page?q=ü', width: 64, height: 48, format: 'png', nodeId: 'node-a' },
    ...extra,
  };
}

function storageFor(endpoint: string, env: Record<string, string> = {}, tuning: Partial<StorageTuning> = {}) {
  const config = loadConfig(
    'hub',
    {},
    {
      ...s3rverEnv,
      SHOTFLEET_S3_BUCKET: 'shots',
      SHOTFLEET_S3_ENDPOINT: endpoint,
      SHOTFLEET_S3_FORCE_PATH_STYLE: 'true',
      SHOTFLEET_S3_REGION: 'us-east-1',
      ...env,
    },
  );
  const metrics = createNodeMetrics();
  const storage = createStorage(config, log, metrics, tuning) as Storage;
  return { storage, metrics };
}

async function rejection(p: Promise<unknown>): Promise<ShotError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ShotError);
  return err as ShotError;
}

let s3: RunningS3;
const drains: Storage[] = [];
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.stop();
});
afterEach(async () => {
  await Promise.all(drains.splice(0).map((s) => s.drain(5_000)));
});
const track = <T extends { storage: Storage }>(x: T) => {
  drains.push(x.storage);
  return x;
};

describe('storage against s3rver', () => {
  it("refuses a client's key under the result cache's prefix, where it could replace a cached result", () => {
    const { storage } = storageFor(s3.endpoint);
    expect(() => storage.validateKey('cache/0123abcd')).toThrow(/must not start with "cache\/"/);
    expect(() => storage.validateKey('cache')).toThrow(ShotError);
    expect(() => storage.validateKey('reports/cache/home.png')).not.toThrow();
    const custom = storageFor(s3.endpoint, { SHOTFLEET_CACHE_S3_PREFIX: 'results/kept' }).storage;
    expect(() => custom.validateKey('results/kept/x')).toThrow(ShotError);
    expect(() => custom.validateKey('cache/x')).not.toThrow();
  });

  it('builds no storage without a bucket', () => {
    const config = loadConfig('hub', {}, {});
    expect(createStorage(config, log, createNodeMetrics())).toBeNull();
  });

  it('stores the exact bytes under a dated, time-sortable key with type and metadata, and a presigned URL fetches them', async () => {
    const { storage, metrics } = track(storageFor(s3.endpoint, { SHOTFLEET_S3_PREFIX: 'shots/test' }));
    await storage.check();
    const image = noisePng(64, 48);
    const stored = await storage.reserve('png', 64 * 48).upload(request(image));

    const d = new Date();
    const day = `${d.getUTCFullYear()}/${String(d.getUTCMonth() + 1).padStart(2, '0')}/${String(d.getUTCDate()).padStart(2, '0')}`;
    expect(stored.key).toMatch(new RegExp(`^shots/test/${day}/[0-9A-HJKMNP-TV-Z]{26}\\.png$`));
    expect(stored).toMatchObject({ bucket: 'shots', bytes: image.length });
    expect(stored.etag).toMatch(/^[0-9a-f]{32}$/);

    const back = await s3.getObject(stored.key);
    expect(back.body.equals(image)).toBe(true);
    expect(back.contentType).toBe('image/png');
    expect(back.metadata).toMatchObject({ 'source-url': 'http://127.0.0.1:9/page?q=%C3%BC', width: '64', height: '48', format: 'png', node: 'node-a' });

    const viaUrl = await fetch(stored.url);
    expect(viaUrl.status).toBe(200);
    expect(Buffer.from(await viaUrl.arrayBuffer()).equals(image)).toBe(true);
    expect(stored.url).toContain('X-Amz-Expires=3600');

    const second = await storage.reserve('png', 64 * 48).upload(request(image));
    expect(second.key > stored.key).toBe(true);
    expect(storage.stats()).toMatchObject({ inFlight: 0, queued: 0, backlogBytes: 0 });
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/shotfleet_upload_duration_seconds_count 2/);
    expect(text).toMatch(/shotfleet_uploads_max 8/);
  });

  it('puts a client key under the prefix and links it through S3_PUBLIC_URL', async () => {
    const { storage } = track(storageFor(s3.endpoint, { SHOTFLEET_S3_PREFIX: 'p', SHOTFLEET_S3_PUBLIC_URL: 'https://cdn.example.com/img/' }));
    const image = noisePng(8, 8);
    const stored = await storage.reserve('webp', 64).upload(request(image, { format: 'webp', key: "a/b-c_d.e!(1)'*.webp" }));
    expect(stored.key).toBe("p/a/b-c_d.e!(1)'*.webp");
    expect(stored.url).toBe("https://cdn.example.com/img/p/a/b-c_d.e!(1)'*.webp");
    const back = await s3.getObject(stored.key);
    expect(back.body.equals(image)).toBe(true);
    expect(back.contentType).toBe('image/webp');
  });

  it('refuses a bad client key with invalid_request on field key, and stores nothing', async () => {
    const { storage } = track(storageFor(s3.endpoint));
    for (const key of ['../x.png', '/abs.png', 'a b.png', 'a/../b', `${'k'.repeat(513)}`, 'dir/', 'ü.png']) {
      const err = (() => {
        try {
          storage.validateKey(key);
        } catch (e) {
          return e as ShotError;
        }
      })();
      expect(err?.status, key).toBe(400);
      expect(err?.details).toEqual({ field: 'key' });
    }
    const before = await s3.keys();
    const err = await rejection(storage.reserve('png', 1).upload(request(noisePng(4, 4), { key: '../escape.png' })));
    expect(err.code).toBe('invalid_request');
    expect(await s3.keys()).toEqual(before);
    expect(storage.stats().backlogBytes).toBe(0);
  });

  it('check() says what is wrong: missing bucket, S3 down', async () => {
    const missing = track(storageFor(s3.endpoint, { SHOTFLEET_S3_BUCKET: 'no-such-bucket' })).storage;
    await expect(missing.check()).rejects.toThrow(/bucket "no-such-bucket" does not exist; create it/);
    const down = track(storageFor(await deadEndpoint(), {}, { maxAttempts: 2 })).storage;
    await expect(down.check()).rejects.toThrow(/cannot reach S3 .*SHOTFLEET_S3_ENDPOINT/);
  });
});

describe('storage behind a fault-injecting proxy', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy(s3.endpoint);
  });
  afterAll(async () => {
    await proxy?.close();
  });
  afterEach(() => {
    proxy.putLatencyMs = 0;
    proxy.failPuts(0, '500');
  });

  for (const fault of ['500', 'reset'] as const) {
    it(`retries PUTs that fail with ${fault} and stores the image`, async () => {
      const { storage } = track(storageFor(proxy.url));
      const image = noisePng(32, 32);
      const putsBefore = proxy.puts;
      proxy.failPuts(2, fault);
      const stored = await storage.reserve('png', 1024).upload(request(image));
      expect(proxy.puts - putsBefore).toBe(3);
      expect(proxy.faultsInjected).toBeGreaterThanOrEqual(2);
      // s3rver ignores Content-MD5, real S3 refuses a body that does not match it (BadDigest): check it is sent right.
      expect(proxy.lastPutHeaders['content-md5']).toBe(createHash('md5').update(image).digest('base64'));
      expect((await s3.getObject(stored.key)).body.equals(image)).toBe(true);
    });
  }

  it('uploads large images as multipart (one PUT per part), bytes intact', async () => {
    const { storage } = track(storageFor(proxy.url, {}, { multipartBytes: 5 * 1024 * 1024 }));
    const image = randomBytes(11 * 1024 * 1024 + 17);
    const putsBefore = proxy.puts;
    const stored = await storage.reserve('png', 4096 * 4096).upload(request(image));
    expect(proxy.puts - putsBefore).toBe(3); // 5 + 5 + 1 MiB parts
    expect(proxy.lastPutHeaders['x-amz-checksum-crc32']).toMatch(/^[A-Za-z0-9+/]{6}==$/); // per-part checksum S3 verifies
    expect((await s3.getObject(stored.key)).body.equals(image)).toBe(true);
  });

  it('gives up with upload_failed when every attempt fails, and reports nothing stored', async () => {
    const { storage } = track(storageFor(proxy.url, {}, { maxAttempts: 3 }));
    const before = await s3.keys();
    proxy.failPuts(100, '500');
    const err = await rejection(storage.reserve('png', 1024).upload(request(noisePng(8, 8))));
    expect(err.status).toBe(502);
    expect(err.code).toBe('upload_failed');
    expect(err.details).toMatchObject({ s3Status: 500, attempts: 3 });
    expect(await s3.keys()).toEqual(before);
    expect(storage.stats()).toMatchObject({ inFlight: 0, queued: 0, backlogBytes: 0 });
  });

  it('fails with upload_failed within bounded time when S3 is down', async () => {
    const { storage } = track(storageFor(await deadEndpoint()));
    const started = Date.now();
    const err = await rejection(storage.reserve('png', 1024).upload(request(noisePng(8, 8))));
    expect(err.code).toBe('upload_failed');
    expect(err.message).toMatch(/ECONNREFUSED/);
    // Bounded by the retry budget (5 attempts, sub-second backoff); generous for a busy machine.
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('gives up with upload_failed when S3 never answers within the upload deadline', async () => {
    const { storage } = track(storageFor(proxy.url, {}, { totalTimeoutMs: 1_000 }));
    const release = proxy.holdPuts();
    try {
      const err = await rejection(storage.reserve('png', 64).upload(request(noisePng(8, 8), { key: 'deadline/never.png' })));
      expect(err.code).toBe('upload_failed');
      expect(err.details).toMatchObject({ reason: 'timeout' });
      expect(storage.stats()).toMatchObject({ inFlight: 0, backlogBytes: 0 });
    } finally {
      release();
    }
  });

  it('queues uploads beyond the pool while S3 is slow, and sheds upload_backlog when queue and pool are full', async () => {
    const { storage } = track(storageFor(proxy.url, { SHOTFLEET_UPLOADS: '1', SHOTFLEET_UPLOAD_QUEUE_MAX: '1' }));
    // S3 holds every PUT until the checks below are done, however slow the machine.
    const release = proxy.holdPuts();
    const image = noisePng(16, 16);
    const first = storage.reserve('png', 256).upload(request(image));
    const second = storage.reserve('png', 256).upload(request(image));
    try {
      await expect.poll(() => storage.stats(), { timeout: 5_000 }).toMatchObject({ inFlight: 1, queued: 1 });

      let shedErr: ShotError | undefined;
      try {
        storage.reserve('png', 256);
      } catch (e) {
        shedErr = e as ShotError;
      }
      expect(shedErr?.status).toBe(503);
      expect(shedErr?.details).toMatchObject({ reason: 'upload_backlog' });
      expect(Number(shedErr?.headers?.['Retry-After'])).toBeGreaterThanOrEqual(1);
    } finally {
      release();
    }

    const stored = await Promise.all([first, second]);
    for (const s of stored) expect((await s3.getObject(s.key)).body.equals(image)).toBe(true);
    storage.reserve('png', 256).release(); // room again
  });

  it('sheds when the backlog bytes are full, before anything renders, and release gives the room back', async () => {
    const { storage } = track(storageFor(proxy.url, { SHOTFLEET_UPLOAD_BACKLOG_BYTES: String(1024 * 1024) }));
    const held = storage.reserve('png', 900 * 600); // ~0.54 MB estimated: two do not fit in 1 MiB
    expect(storage.stats().backlogBytes).toBeGreaterThan(400_000);
    expect(() => storage.reserve('png', 900 * 600)).toThrow(expect.objectContaining({ details: expect.objectContaining({ reason: 'upload_backlog' }) }));
    held.release();
    held.release(); // idempotent
    expect(storage.stats().backlogBytes).toBe(0);
    storage.reserve('png', 900 * 600).release();
  });

  it('a client that leaves while its upload waits frees its place and stores nothing', async () => {
    const { storage } = track(storageFor(proxy.url, { SHOTFLEET_UPLOADS: '1' }));
    // The first upload holds the only slot until the second has left.
    const release = proxy.holdPuts();
    const image = noisePng(16, 16);
    const first = storage.reserve('png', 256).upload(request(image, { key: 'cancel/first.png' }));
    try {
      const leaving = new AbortController();
      const second = storage.reserve('png', 256).upload(request(image, { key: 'cancel/second.png' }), leaving.signal);
      await expect.poll(() => storage.stats().queued, { timeout: 5_000 }).toBe(1);
      leaving.abort();
      const err = await rejection(second);
      expect(err.code).toBe('upload_failed');
      expect(storage.stats().queued).toBe(0);
    } finally {
      release();
    }
    await first;
    expect(await s3.exists('cancel/first.png')).toBe(true);
    expect(await s3.exists('cancel/second.png')).toBe(false);
  });

  it('drain() waits for queued and in-flight uploads, all of which land', async () => {
    const { storage } = storageFor(proxy.url, { SHOTFLEET_UPLOADS: '2' });
    const release = proxy.holdPuts();
    const image = noisePng(16, 16);
    const uploads = [1, 2, 3, 4, 5].map((i) => storage.reserve('png', 256).upload(request(image, { key: `drain/${i}.png` })));
    let drained = false;
    try {
      await expect.poll(() => storage.stats().queued, { timeout: 5_000 }).toBe(3);
      const draining = storage.drain(30_000).then(() => (drained = true));
      // While S3 holds the uploads, drain() waits for them; once S3 answers, they all land.
      await new Promise((r) => setTimeout(r, 100));
      expect(drained).toBe(false);
      release();
      await draining;
    } finally {
      release();
    }
    expect(storage.stats()).toMatchObject({ inFlight: 0, queued: 0, backlogBytes: 0 });
    const stored = await Promise.all(uploads);
    expect(stored.map((s) => s.key)).toEqual([1, 2, 3, 4, 5].map((i) => `drain/${i}.png`));
    for (const s of stored) expect((await s3.getObject(s.key)).body.equals(image)).toBe(true);
    expect(() => storage.reserve('png', 1)).toThrow(expect.objectContaining({ code: 'draining' }));
  });
});
