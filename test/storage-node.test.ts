import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import { startShotfleet, waitForLog, type RunningProcess } from './helpers/processes.js';
import { s3rverEnv, startFaultProxy, startS3, type FaultProxy, type RunningS3 } from './helpers/s3.js';

// End to end: a real node (Chromium, one page) storing to s3rver through the fault-injecting proxy.

let s3: RunningS3;
let proxy: FaultProxy;
let pages: http.Server;
let pageBase: string;
const pageHits = new Map<string, number>();

beforeAll(async () => {
  s3 = await startS3();
  proxy = await startFaultProxy(s3.endpoint);
  pages = http.createServer((req, res) => {
    pageHits.set(req.url ?? '', (pageHits.get(req.url ?? '') ?? 0) + 1);
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><body style="margin:0;background:#1a6"><h1>${req.url}</h1></body>`);
  });
  await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
  pageBase = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await proxy?.close();
  await s3?.stop();
  pages?.closeAllConnections();
  await new Promise((r) => pages?.close(r));
});

function nodeEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...s3rverEnv,
    SHOTFLEET_PAGES: '1',
    SHOTFLEET_ALLOW_HOSTS: '127.0.0.1',
    SHOTFLEET_S3_BUCKET: s3.bucket,
    SHOTFLEET_S3_ENDPOINT: proxy.url,
    SHOTFLEET_S3_FORCE_PATH_STYLE: 'true',
    SHOTFLEET_S3_REGION: 'us-east-1',
    ...extra,
  };
}

/** Small images for every request that does not say otherwise: the pixels are not what this file checks. */
const small = { width: 320, height: 200 };

const shoot = (node: RunningProcess, body: Record<string, unknown>) =>
  fetch(`${node.url}/screenshot`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ viewport: small, ...body }),
  });

async function status(node: RunningProcess) {
  const res = await fetch(`${node.url}/status`);
  return { code: res.status, body: (await res.json()) as { status: string; uploads: { inFlight: number; queued: number; backlogBytes: number } } };
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 15_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * An upload backlog of 1 MB: room for several small images at once (the SIGTERM test queues three 320×200 JPEGs,
 * ~14 KB reserved each), but not for a 1000×1000 PNG (reserved at ~1 MB before it renders) next to another image.
 */
const backlogBytes = 1_000_000;
const tooBigForTheBacklog = { format: 'png', viewport: { width: 1000, height: 1000 } };

/**
 * One node for the whole file (tests run in order): it starts while every PUT to S3 has its connection reset, so the
 * first test sees S3 unreachable from the start; S3 then comes back for the others; the last one stops the node.
 */
describe('a node with store: true', { timeout: 150_000 }, () => {
  let node: RunningProcess;

  beforeAll(async () => {
    proxy.failPuts(Number.MAX_SAFE_INTEGER, 'reset');
    node = await startShotfleet(
      'serve',
      nodeEnv({
        SHOTFLEET_S3_PREFIX: 'e2e',
        SHOTFLEET_UPLOADS: '1',
        SHOTFLEET_UPLOAD_BACKLOG_BYTES: String(backlogBytes),
        // A grace far longer than the test may take: a node that waited it out (its answered clients' keep-alive
        // sockets held the close for their whole idle timeout) is killed by stop() and fails with a non-zero exit.
        SHOTFLEET_SHUTDOWN_GRACE_MS: '300000',
      }),
    );
  });

  afterAll(async () => {
    proxy.failPuts(0, 'reset');
    await node?.stop();
  });

  it('answers 502 upload_failed while S3 cannot be reached, says so in its log, and stays healthy', async () => {
    try {
      const res = await shoot(node, { url: `${pageBase}/s3-down`, store: true, format: 'jpeg' });
      expect(res.status).toBe(502);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('upload_failed');
      expect((await status(node)).code).toBe(200);
      const plain = await shoot(node, { url: `${pageBase}/after-s3-down`, format: 'jpeg' });
      expect(plain.status).toBe(200);
      // The node's start check of its bucket.
      await waitForLog(node, 'cannot reach S3', (l) => String(l.err ?? l.msg).includes('cannot reach S3'), 30_000);
    } finally {
      proxy.failPuts(0, 'reset');
    }
  });

  it('answers 200 JSON after S3 confirmed the object; the stored bytes are the image; the URL fetches them', async () => {
    const res = await shoot(node, { url: `${pageBase}/stored`, store: true, viewport: { width: 320, height: 200 } });
    expect(res.status).toBe(200);
    expect(res.headers.get('server-timing')).toMatch(/queue;dur=\d+, render;dur=\d+, upload;dur=\d+/);
    const body = (await res.json()) as Record<string, unknown> & { timings: Record<string, number> };
    expect(body).toMatchObject({ bucket: 'shots', format: 'png', width: 320, height: 200 });
    expect(body.key).toMatch(/^e2e\/\d{4}\/\d\d\/\d\d\/\w{26}\.png$/);
    for (const t of ['queueMs', 'renderMs', 'uploadMs']) expect(typeof body.timings[t]).toBe('number');

    const stored = await s3.getObject(body.key as string);
    expect(stored.body.length).toBe(body.bytes);
    expect(stored.contentType).toBe('image/png');
    expect(stored.metadata).toMatchObject({ 'source-url': `${pageBase}/stored`, width: '320', height: '200', format: 'png' });
    const png = PNG.sync.read(stored.body);
    expect([png.width, png.height]).toEqual([320, 200]);

    const viaUrl = await fetch(body.url as string);
    expect(Buffer.from(await viaUrl.arrayBuffer()).equals(stored.body)).toBe(true);

    const keyed = await shoot(node, { url: `${pageBase}/keyed`, store: true, format: 'jpeg', key: 'clients/a.jpg' });
    expect(keyed.status).toBe(200);
    expect(((await keyed.json()) as { key: string }).key).toBe('e2e/clients/a.jpg');
    const badKey = await shoot(node, { url: `${pageBase}/bad-key`, store: true, key: '../escape.png' });
    expect(badKey.status).toBe(400);
    expect(((await badKey.json()) as { error: { details: unknown } }).error.details).toMatchObject({ field: 'key' });
    expect(pageHits.get('/bad-key')).toBeUndefined();
  });

  it('keeps rendering non-store requests while a slow S3 holds an upload', async () => {
    // 2 s per PUT, then held until the non-store renders are done: whatever the machine's speed, the upload
    // is still running while they render on the node's only page.
    proxy.putLatencyMs = 2_000;
    const release = proxy.holdPuts();
    try {
      let storeDone = false;
      const storing = shoot(node, { url: `${pageBase}/slow-store`, store: true, format: 'jpeg' }).then((r) => {
        storeDone = true;
        return r;
      });
      await waitUntil(async () => (await status(node)).body.uploads.inFlight === 1, 'the upload to start');
      for (const i of [1, 2, 3]) {
        const res = await shoot(node, { url: `${pageBase}/while-uploading-${i}`, format: 'jpeg', timeout: 20_000 });
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe('image/jpeg');
      }
      expect(storeDone).toBe(false);
      expect((await status(node)).body.uploads.inFlight).toBe(1);
      release();
      expect((await storing).status).toBe(200);
    } finally {
      release();
      proxy.putLatencyMs = 0;
    }
  });

  it('answers 503 upload_backlog before rendering when the backlog has no room for the image', async () => {
    const shedBefore = await uploadBacklogShed(node);
    const release = proxy.holdPuts();
    try {
      const first = shoot(node, { url: `${pageBase}/backlog-first`, store: true, format: 'jpeg' });
      await waitUntil(async () => (await status(node)).body.uploads.inFlight === 1, 'the first upload to start');
      const res = await shoot(node, { url: `${pageBase}/backlog-second`, store: true, ...tooBigForTheBacklog });
      expect(res.status).toBe(503);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await res.json()) as { error: { details: unknown } }).error.details).toMatchObject({ reason: 'upload_backlog' });
      expect(pageHits.get('/backlog-second')).toBeUndefined();
      release();
      expect((await first).status).toBe(200);
      expect(await uploadBacklogShed(node)).toBe(shedBefore + 1);
      // Alone, the same image fits: the backlog was full, not the image too big for it.
      expect((await shoot(node, { url: `${pageBase}/backlog-alone`, store: true, ...tooBigForTheBacklog })).status).toBe(200);
    } finally {
      release();
    }
  });

  it('on SIGTERM finishes queued uploads: every answered key is in S3, and the node exits 0 once they are answered', async () => {
    const release = proxy.holdPuts();
    proxy.putLatencyMs = 300;
    try {
      const requests = [1, 2, 3].map((i) => shoot(node, { url: `${pageBase}/sigterm-${i}`, store: true, format: 'jpeg' }));
      await waitUntil(
        async () => {
          const u = (await status(node)).body.uploads;
          return u.inFlight === 1 && u.queued === 2;
        },
        'three uploads in the pool',
        60_000,
      );
      const code = node.stop(30_000);
      await waitUntil(async () => (await status(node)).code === 503, 'the node to drain');
      release(); // S3 answers again only once the node is shutting down
      const answers = await Promise.all(requests);
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
      const keys = await Promise.all(answers.map(async (r) => ((await r.json()) as { key: string }).key));
      for (const key of keys) expect(await s3.exists(key)).toBe(true);
      expect(await code).toBe(0);
    } finally {
      release();
      proxy.putLatencyMs = 0;
    }
  });
});

async function uploadBacklogShed(node: RunningProcess): Promise<number> {
  const metrics = await (await fetch(`${node.url}/metrics`)).text();
  return Number(/^shotfleet_shed_total\{reason="upload_backlog"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
}
