import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signLink } from '../src/signing/signature.js';
import { isJpeg } from './helpers/images.js';
import { expectPng, metricValues, request, shoot, shootGet, startSite, type Site } from './helpers/node-client.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';
import { s3NodeEnv, startFaultProxy, startS3, type FaultProxy, type RunningS3 } from './helpers/s3.js';

/**
 * The contract's result cache end to end: two real nodes (Chromium, one page each) sharing s3rver as the cache's S3
 * tier, and a loopback site that counts the requests for each page, so "no render" means the site saw nothing.
 * Node `locked` has a token and a signing key, one page and no queue (easy to saturate); node `open` has neither and
 * reaches S3 through a proxy the last test takes down.
 */

const token = 'cache-test-token';
const signingKey = 'cache-test-signing-key';
let s3: RunningS3;
let proxy: FaultProxy;
let site: Site;
let locked: RunningProcess;
let open: RunningProcess;
const hits = new Map<string, number>();
let releaseHeld: () => void = () => undefined;
let held: Promise<void> = Promise.resolve();

const seen = (path: string) => hits.get(path) ?? 0;
const auth = { authorization: `Bearer ${token}` };

beforeAll(async () => {
  s3 = await startS3();
  proxy = await startFaultProxy(s3.endpoint);
  site = await startSite((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    hits.set(path, seen(path) + 1);
    const send = (status: number, body: string) => {
      res.writeHead(status, { 'Content-Type': 'text/html', 'Cache-Control': 'no-store' });
      res.end(`<!doctype html><body style="margin:0;background:#2a7"><h1>${body}</h1></body>`);
    };
    if (path === '/slow') setTimeout(() => send(200, 'slow'), 1500);
    else if (path === '/held') void held.then(() => send(200, 'held'));
    else if (path === '/broken') send(500, 'broken');
    else if (path === '/cookie') send(200, `cookie: ${req.headers.cookie ?? 'none'}`);
    else if (path === '/favicon.ico') res.writeHead(404).end();
    else send(200, path);
  });
  const common = { SHOTFLEET_PAGES: '1', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1', SHOTFLEET_S3_PREFIX: 'shots' };
  [locked, open] = await Promise.all([
    startShotfleet('serve', { ...s3NodeEnv(s3), ...common, SHOTFLEET_QUEUE_MAX: '0', SHOTFLEET_TOKEN: token, SHOTFLEET_SIGNING_KEY: signingKey }),
    startShotfleet('serve', { ...s3NodeEnv({ bucket: s3.bucket, endpoint: proxy.url }), ...common, SHOTFLEET_CACHE_TTL: '600' }),
  ]);
}, 180_000);

afterAll(async () => {
  releaseHeld();
  await Promise.all([locked?.stop(), open?.stop()]);
  await proxy?.close();
  await s3?.stop();
  await site?.close();
});

const page = (path: string) => `${site.url}${path}`;

describe('the result cache on real nodes', { timeout: 120_000 }, () => {
  it('miss, then hit without a render; another option is a miss; past its cacheTtl it renders again', async () => {
    const body = { url: page('/basic'), cacheTtl: 600, viewport: { width: 320, height: 200 } };
    const miss = await shoot(open.url, body);
    expectPng(miss);
    expect(miss.headers.get('x-shotfleet-cache')).toBe('miss');
    const hit = await shoot(open.url, { ...body, timeout: 20_000 });
    expect(hit.headers.get('x-shotfleet-cache')).toBe('hit');
    expect(hit.bytes.equals(miss.bytes)).toBe(true);
    expect(hit.headers.get('etag')).toBe(miss.headers.get('etag'));
    expect(hit.headers.get('x-shotfleet-target-status')).toBe('200');
    expect(seen('/basic')).toBe(1);

    const jpeg = await shoot(open.url, { ...body, format: 'jpeg' });
    expect(jpeg.headers.get('x-shotfleet-cache')).toBe('miss');
    expect(isJpeg(jpeg.bytes)).toBe(true);
    expect(seen('/basic')).toBe(2);

    await new Promise((r) => setTimeout(r, 2100));
    expect((await shoot(open.url, { ...body, cacheTtl: 2 })).headers.get('x-shotfleet-cache')).toBe('miss');
    expect(seen('/basic')).toBe(3);
  });

  it('4 concurrent identical requests of a slow page: the site sees one request, all four get its image', async () => {
    const answers = await Promise.all([1, 2, 3, 4].map(() => shoot(open.url, { url: page('/slow'), viewport: { width: 320, height: 200 } })));
    for (const a of answers) expectPng(a);
    expect(seen('/slow')).toBe(1);
    expect(answers.map((a) => a.headers.get('x-shotfleet-cache')).sort()).toEqual(['coalesced', 'coalesced', 'coalesced', 'miss']);
    expect(new Set(answers.map((a) => a.headers.get('etag'))).size).toBe(1);
  });

  it('If-None-Match with the ETag of a cached result: 304, no body, no render', async () => {
    const first = await shootGet(open.url, { url: page('/etag'), width: '320', height: '200' });
    const etag = first.headers.get('etag')!;
    const again = await request(`${open.url}/screenshot?${new URLSearchParams({ url: page('/etag'), width: '320', height: '200' })}`, {
      headers: { 'if-none-match': etag },
    });
    expect(again.status).toBe(304);
    expect(again.bytes.length).toBe(0);
    expect(again.headers.get('etag')).toBe(etag);
    expect(seen('/etag')).toBe(1);
  });

  it('Cache-Control: public on a node without a token, private for a token, public until a signed link expires', async () => {
    const openAnswer = await shootGet(open.url, { url: page('/cc'), width: '320', height: '200', cacheTtl: '300' });
    expect(openAnswer.headers.get('cache-control')).toBe('public, max-age=300');
    const withToken = await shoot(locked.url, { url: page('/cc'), cacheTtl: 300 }, { headers: auth });
    expect(withToken.headers.get('cache-control')).toMatch(/^private, max-age=\d+$/);
    const expires = Math.floor(Date.now() / 1000) + 60;
    const link = signLink(new URL(`${locked.url}/screenshot?${new URLSearchParams({ url: page('/cc'), cacheTtl: '300' })}`), signingKey, expires);
    const signed = await request(link.toString());
    expect(signed.status).toBe(200);
    expect(signed.headers.get('x-shotfleet-cache')).toBe('hit');
    expect(Number(/^public, max-age=(\d+)$/.exec(signed.headers.get('cache-control')!)?.[1])).toBeLessThanOrEqual(60);
    const noCache = await shoot(locked.url, { url: page('/cc') }, { headers: auth });
    expect(noCache.headers.get('cache-control')).toBe('no-store');
  });

  it('errors are never served from the cache: a refused page status renders (and fails) each time', async () => {
    for (let i = 1; i <= 2; i++) {
      const answer = await shoot(open.url, { url: page('/broken'), failOnHttpStatus: true });
      expect(answer.status).toBe(502);
      expect(answer.json?.error?.code).toBe('target_http_error');
      expect(seen('/broken')).toBe(i);
    }
  });

  it('different cookies never get each other’s image', async () => {
    const as = (value: string) => shoot(open.url, { url: page('/cookie'), cookies: [{ name: 'who', value }], viewport: { width: 320, height: 200 } });
    const alice = await as('alice');
    const bob = await as('bob');
    expect(bob.headers.get('x-shotfleet-cache')).toBe('miss');
    expect(bob.bytes.equals(alice.bytes)).toBe(false);
    expect((await as('alice')).bytes.equals(alice.bytes)).toBe(true);
    expect(seen('/cookie')).toBe(2);
  });

  it('a hit is answered while the node sheds renders (its one page busy, no queue)', async () => {
    const body = { url: page('/kept'), cacheTtl: 300 };
    expectPng(await shoot(locked.url, body, { headers: auth }));
    held = new Promise((r) => (releaseHeld = r));
    const busy = shoot(locked.url, { url: page('/held') }, { headers: auth });
    for (let i = 0; i < 100 && seen('/held') === 0; i++) await new Promise((r) => setTimeout(r, 50));
    const shed = await shoot(locked.url, { url: page('/other') }, { headers: auth });
    expect(shed.status).toBe(503);
    const hit = await shoot(locked.url, body, { headers: auth });
    expect(hit.status).toBe(200);
    expect(hit.headers.get('x-shotfleet-cache')).toBe('hit');
    releaseHeld();
    expectPng(await busy);
  });

  it('two nodes share the S3 tier: one renders, the other hits; store: true on a hit copies it to the key asked', async () => {
    const body = { url: page('/shared'), cacheTtl: 300, viewport: { width: 320, height: 200 } };
    const kept = async () => (await s3.keys()).filter((k) => k.startsWith('shots/cache/')).length;
    const keptBefore = await kept();
    const rendered = await shoot(locked.url, body, { headers: auth });
    expect(rendered.headers.get('x-shotfleet-cache')).toBe('miss');
    // The upload to the S3 tier follows the answer.
    for (let i = 0; i < 100 && (await kept()) === keptBefore; i++) await new Promise((r) => setTimeout(r, 50));
    const other = await shoot(open.url, body);
    expect(other.headers.get('x-shotfleet-cache')).toBe('hit');
    expect(other.bytes.equals(rendered.bytes)).toBe(true);
    expect(seen('/shared')).toBe(1);

    const stored = await shoot(open.url, { ...body, store: true, key: 'cached/shared.png' });
    expect(stored.status).toBe(200);
    expect(stored.headers.get('x-shotfleet-cache')).toBe('hit');
    expect(stored.json).toMatchObject({ bucket: s3.bucket, key: 'shots/cached/shared.png', bytes: rendered.bytes.length, width: 320, height: 200 });
    expect((await s3.getObject('shots/cached/shared.png')).body.equals(rendered.bytes)).toBe(true);
    const link = await request(String(stored.json!.url));
    expect(link.bytes.equals(rendered.bytes)).toBe(true);
    expect(seen('/shared')).toBe(1);
    const metrics = (await request(`${open.url}/metrics`)).bytes.toString();
    expect(metricValues(metrics, 'shotfleet_result_cache_requests_total', 'result').hit).toBeGreaterThanOrEqual(2);
  });

  it('with its S3 tier gone, a node still answers 200 by rendering', async () => {
    await proxy.close();
    const answer = await shoot(open.url, { url: page('/no-s3'), viewport: { width: 320, height: 200 } });
    expectPng(answer);
    expect(answer.headers.get('x-shotfleet-cache')).toBe('miss');
    expect((await shoot(open.url, { url: page('/no-s3'), viewport: { width: 320, height: 200 } })).headers.get('x-shotfleet-cache')).toBe('hit');
    expect(seen('/no-s3')).toBe(1);
  });
});
