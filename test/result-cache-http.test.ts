import { describe, expect, it } from 'vitest';
import { shed, ShotError } from '../src/errors/shot-error.js';
import type { NodeMetrics } from '../src/metrics/node-metrics.js';
import type { ScreenshotRequest } from '../src/pipeline/render-service.js';
import { createResultCache } from '../src/result-cache/result-cache.js';
import type { S3Tier } from '../src/result-cache/s3-tier.js';
import { signLink } from '../src/signing/signature.js';
import { imageResult, inProcessNode } from './helpers/in-process-node.js';
import { tinyPng } from './helpers/images.js';
import { metricValues } from './helpers/node-client.js';

/**
 * The result cache behind the node's HTTP surface, in process: the real routes, cache and metrics with a stub
 * render service whose every render gives different bytes, so an answer shows which render it came from.
 * Real Chromium and S3 are in test/result-cache-node.test.ts.
 */

const page = 'http://127.0.0.1:9/page';

interface Renders {
  count: number;
  /** Holds every render until release() (a slow page). */
  hold(): () => void;
  /** The next renders fail with this error. */
  failNext(error: Error, times?: number): void;
}

function cachedNode(
  opts: { token?: string; signingKey?: string; refusal?: () => ShotError | null; s3?: S3Tier; memoryBytes?: number; bestEffort?: boolean } = {},
) {
  let count = 0;
  let gate: Promise<void> = Promise.resolve();
  let failures: { error: Error; times: number } = { error: new Error(), times: 0 };
  const renders: Renders = {
    get count() {
      return count;
    },
    hold() {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return release;
    },
    failNext(error, times = 1) {
      failures = { error, times };
    },
  };
  const node = inProcessNode({
    token: opts.token,
    signingKey: opts.signingKey,
    refusalForAnyRequest: opts.refusal,
    resultCache: (metrics: NodeMetrics) => ({
      cache: createResultCache({ memoryBytes: opts.memoryBytes ?? 1024 * 1024, s3: opts.s3 ?? null, scope: 'test', metrics }),
      store: null,
    }),
    async screenshot(req: ScreenshotRequest) {
      count++;
      const n = count;
      await gate;
      if (failures.times > 0) {
        failures.times--;
        throw failures.error;
      }
      if (req.signal.aborted) throw req.signal.reason;
      return imageResult({ image: Buffer.concat([tinyPng, Buffer.from(`render ${n}`)]), targetStatus: 200, bestEffort: opts.bestEffort ?? false });
    },
  });
  return { node, renders };
}

const renderNumber = (bytes: Buffer) => bytes.subarray(tinyPng.length).toString();

describe('the result cache over HTTP', () => {
  it('a miss renders and keeps; the same request is a hit with Age, the same bytes and ETag, and no render', async () => {
    const { node, renders } = cachedNode();
    const first = await node.shoot({ url: page, cacheTtl: 60 });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-shotfleet-cache')).toBe('miss');
    expect(first.headers.get('age')).toBe('0');
    expect(first.headers.get('etag')).toMatch(/^"[\w-]{43}"$/);
    const again = await node.shoot({ cacheTtl: 60, format: 'png', url: page, timeout: 5000 });
    expect(again.headers.get('x-shotfleet-cache')).toBe('hit');
    expect(again.headers.get('age')).toMatch(/^\d+$/);
    expect(again.headers.get('etag')).toBe(first.headers.get('etag'));
    expect(again.headers.get('x-shotfleet-target-status')).toBe('200');
    expect(again.headers.get('server-timing')).toMatch(/^queue;dur=\d+, render;dur=0, cache;desc=hit-memory$/);
    expect(again.bytes.equals(first.bytes)).toBe(true);
    expect(renders.count).toBe(1);
    // GET is the same request as the POST.
    const get = await node.request(`/screenshot?url=${encodeURIComponent(page)}&cacheTtl=60`);
    expect(get.headers.get('x-shotfleet-cache')).toBe('hit');
    expect(renders.count).toBe(1);
    expect(metricValues(await node.metricsText(), 'shotfleet_result_cache_requests_total', 'result')).toEqual({ hit: 2, miss: 1, coalesced: 0 });
    expect(metricValues(await node.metricsText(), 'shotfleet_result_cache_memory_bytes')['']).toBeGreaterThan(first.bytes.length);
  });

  it('cacheTtl 0 renders every time and answers no-store, with an ETag and no cache header', async () => {
    const { node, renders } = cachedNode();
    for (let i = 0; i < 2; i++) {
      const answer = await node.shoot({ url: page });
      expect(answer.headers.get('cache-control')).toBe('no-store');
      expect(answer.headers.get('x-shotfleet-cache')).toBeNull();
      expect(answer.headers.get('etag')).toMatch(/^"/);
    }
    expect(renders.count).toBe(2);
  });

  it('a result older than the cacheTtl asked is rendered again; a longer cacheTtl may take it', async () => {
    const { node, renders } = cachedNode();
    await node.shoot({ url: page, cacheTtl: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    const stale = await node.shoot({ url: page, cacheTtl: 1 });
    expect(stale.headers.get('x-shotfleet-cache')).toBe('miss');
    expect(renders.count).toBe(2);
    const older = await node.shoot({ url: page, cacheTtl: 3600 });
    expect(older.headers.get('x-shotfleet-cache')).toBe('hit');
  });

  it('another option, other credentials, cookies, headers or html never get a cached image of another request', async () => {
    const { node, renders } = cachedNode();
    const variants = [
      { url: page },
      { url: page, format: 'jpeg' },
      { url: page, cookies: [{ name: 'sid', value: 'alice' }] },
      { url: page, cookies: [{ name: 'sid', value: 'bob' }] },
      { url: page, headers: { Authorization: 'Bearer alice' } },
      { url: page, headers: { Authorization: 'Bearer bob' } },
      { url: page, authenticate: { username: 'alice', password: 'a' } },
      { url: page, authenticate: { username: 'alice', password: 'b' } },
      { url: page, scripts: 'document.body.dataset.who = "alice"' },
      { html: '<h1>alice</h1>' },
      { html: '<h1>bob</h1>' },
      { url: `${page}?b` },
    ];
    const seen = new Set<string>();
    for (const v of variants) {
      const answer = await node.shoot({ ...v, cacheTtl: 60 });
      expect(answer.headers.get('x-shotfleet-cache'), JSON.stringify(v)).toBe('miss');
      seen.add(renderNumber(answer.bytes));
    }
    expect(seen.size).toBe(variants.length);
    expect(renders.count).toBe(variants.length);
    // Each one, asked again, gets its own image back.
    for (const [i, v] of variants.entries()) {
      const answer = await node.shoot({ ...v, cacheTtl: 60 });
      expect(answer.headers.get('x-shotfleet-cache')).toBe('hit');
      expect(renderNumber(answer.bytes)).toBe(`render ${i + 1}`);
    }
  });

  it('a request with a session cookie is neither answered from the cache nor kept', async () => {
    const { node, renders } = cachedNode();
    await node.shoot({ url: page, cacheTtl: 60 });
    const session = await node.shoot({ url: page, cacheTtl: 60 }, { cookie: 'shot_session=abc' });
    expect(session.headers.get('x-shotfleet-cache')).toBeNull();
    expect(session.headers.get('cache-control')).toBe('no-store');
    expect(renderNumber(session.bytes)).toBe('render 2');
    expect(renders.count).toBe(2);
  });

  it('4 concurrent identical requests of a slow page render once: one miss, three coalesced, the same bytes', async () => {
    const { node, renders } = cachedNode();
    const release = renders.hold();
    const answers = Promise.all([1, 2, 3, 4].map(() => node.shoot({ url: page, cacheTtl: 60 })));
    await new Promise((r) => setTimeout(r, 50));
    release();
    const all = await answers;
    expect(renders.count).toBe(1);
    expect(all.map((a) => a.headers.get('x-shotfleet-cache')).sort()).toEqual(['coalesced', 'coalesced', 'coalesced', 'miss']);
    expect(new Set(all.map((a) => a.bytes.toString('base64'))).size).toBe(1);
    expect(metricValues(await node.metricsText(), 'shotfleet_result_cache_requests_total', 'result')).toEqual({ hit: 0, miss: 1, coalesced: 3 });
  });

  it('when the render others wait for fails, its client gets the error and one of the waiters renders for the rest', async () => {
    const { node, renders } = cachedNode();
    const release = renders.hold();
    renders.failNext(new ShotError('navigation_failed', 'the target did not answer'));
    const answers = Promise.all([1, 2, 3].map(() => node.shoot({ url: page, cacheTtl: 60 })));
    await new Promise((r) => setTimeout(r, 50));
    release();
    const all = await answers;
    expect(all.map((a) => a.status)).toEqual([502, 200, 200]);
    expect(
      all
        .slice(1)
        .map((a) => a.headers.get('x-shotfleet-cache'))
        .sort(),
    ).toEqual(['coalesced', 'miss']);
    expect(renders.count).toBe(2);
  });

  it('when the page itself fails the render others wait for (no such element), every waiter gets that answer without a render of its own', async () => {
    const { node, renders } = cachedNode();
    const release = renders.hold();
    renders.failNext(new ShotError('selector_not_found', 'no element matches #missing'));
    const answers = Promise.all([1, 2, 3].map(() => node.shoot({ url: page, cacheTtl: 60 })));
    await new Promise((r) => setTimeout(r, 50));
    release();
    const all = await answers;
    expect(all.map((a) => a.status)).toEqual([422, 422, 422]);
    expect(renders.count).toBe(1);
  });

  it('a request waiting for an identical render gives up at its own deadline (504), and the render goes on for the others', async () => {
    const { node, renders } = cachedNode();
    const release = renders.hold();
    const first = node.shoot({ url: page, cacheTtl: 60, timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 20));
    const impatient = await node.shoot({ url: page, cacheTtl: 60, timeout: 200 });
    expect(impatient.status).toBe(504);
    expect(impatient.json?.error?.code).toBe('timeout');
    release();
    expect((await first).headers.get('x-shotfleet-cache')).toBe('miss');
    expect(renders.count).toBe(1);
  });

  it('errors are never kept: the next identical request renders again', async () => {
    const { node, renders } = cachedNode();
    renders.failNext(new ShotError('selector_not_found', 'no #x'));
    expect((await node.shoot({ url: page, cacheTtl: 60 })).status).toBe(422);
    const next = await node.shoot({ url: page, cacheTtl: 60 });
    expect(next.status).toBe(200);
    expect(next.headers.get('x-shotfleet-cache')).toBe('miss');
    expect(renders.count).toBe(2);
  });

  it('a best-effort capture (cut short at its deadline) is not kept', async () => {
    const { node, renders } = cachedNode({ bestEffort: true });
    await node.shoot({ url: page, cacheTtl: 60, bestEffort: true });
    const next = await node.shoot({ url: page, cacheTtl: 60, bestEffort: true });
    expect(next.headers.get('x-shotfleet-cache')).toBe('miss');
    expect(renders.count).toBe(2);
  });

  it("If-None-Match naming a cached result's ETag answers 304 with no body and no render", async () => {
    const { node, renders } = cachedNode();
    const first = await node.shoot({ url: page, cacheTtl: 60 });
    const etag = first.headers.get('etag')!;
    for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const answer = await node.shoot({ url: page, cacheTtl: 60 }, { 'if-none-match': ifNoneMatch });
      expect(answer.status, ifNoneMatch).toBe(304);
      expect(answer.bytes.length).toBe(0);
      expect(answer.headers.get('etag')).toBe(etag);
      expect(answer.headers.get('x-shotfleet-cache')).toBe('hit');
      expect(answer.headers.get('cache-control')).toMatch(/^public, max-age=\d+$/);
    }
    expect((await node.shoot({ url: page, cacheTtl: 60 }, { 'if-none-match': '"other"' })).status).toBe(200);
    expect(renders.count).toBe(1);
  });

  it('Cache-Control: public on an open node, private with a token, public up to the expiry of a signed link', async () => {
    const open = cachedNode().node;
    expect((await open.shoot({ url: page, cacheTtl: 600 })).headers.get('cache-control')).toBe('public, max-age=600');

    const token = 't0ken';
    const signingKey = 'signing-key';
    const { node } = cachedNode({ token, signingKey });
    const withToken = await node.shoot({ url: page, cacheTtl: 600 }, { authorization: `Bearer ${token}` });
    expect(withToken.headers.get('cache-control')).toBe('private, max-age=600');

    const expires = Math.floor(Date.now() / 1000) + 120;
    const link = signLink(new URL(`http://node/screenshot?url=${encodeURIComponent(page)}&cacheTtl=600`), signingKey, expires);
    const signed = await node.request(`${link.pathname}${link.search}`);
    expect(signed.headers.get('x-shotfleet-cache')).toBe('hit');
    const maxAge = Number(/^public, max-age=(\d+)$/.exec(signed.headers.get('cache-control')!)?.[1]);
    expect(maxAge).toBeGreaterThan(110);
    expect(maxAge).toBeLessThanOrEqual(120);
    const longLink = signLink(new URL(`http://node/screenshot?url=${encodeURIComponent(page)}&cacheTtl=60`), signingKey, expires + 3600);
    expect((await node.request(`${longLink.pathname}${longLink.search}`)).headers.get('cache-control')).toMatch(/^public, max-age=(60|59)$/);
  });

  it('while renders are shed a hit is still answered; a miss gets the 503; a draining node refuses both', async () => {
    let refusal: ShotError | null = null;
    const { node, renders } = cachedNode({ refusal: () => refusal });
    await node.shoot({ url: page, cacheTtl: 60 });
    refusal = shed('queue_full', 2);
    const hit = await node.shoot({ url: page, cacheTtl: 60 });
    expect(hit.status).toBe(200);
    expect(hit.headers.get('x-shotfleet-cache')).toBe('hit');
    const miss = await node.shoot({ url: `${page}?other`, cacheTtl: 60 });
    expect(miss.status).toBe(503);
    expect(miss.json?.error?.details?.reason).toBe('queue_full');
    expect((await node.shoot({ url: page })).status).toBe(503);
    refusal = shed('draining', 1);
    expect((await node.shoot({ url: page, cacheTtl: 60 })).status).toBe(503);
    expect(renders.count).toBe(1);
  });

  it('the memory tier stays within its bytes, least recently used out first', async () => {
    const { node, renders } = cachedNode({ memoryBytes: 3 * (tinyPng.length + 8 + 512) });
    for (const n of [1, 2, 3]) await node.shoot({ url: `${page}?${n}`, cacheTtl: 60 });
    await node.shoot({ url: `${page}?1`, cacheTtl: 60 }); // 1 is now the most recently used
    await node.shoot({ url: `${page}?4`, cacheTtl: 60 }); // evicts 2
    expect((await node.shoot({ url: `${page}?1`, cacheTtl: 60 })).headers.get('x-shotfleet-cache')).toBe('hit');
    expect((await node.shoot({ url: `${page}?2`, cacheTtl: 60 })).headers.get('x-shotfleet-cache')).toBe('miss');
    expect(renders.count).toBe(5);
    expect(metricValues(await node.metricsText(), 'shotfleet_result_cache_memory_bytes')['']).toBeLessThanOrEqual(3 * (tinyPng.length + 8 + 512));
  });
});
