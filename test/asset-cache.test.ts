import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertColor, decodePng, type Rgba } from './helpers/images.js';
import { metricValues, ok, request, shoot, type Answer } from './helpers/node-client.js';
import { page, startTestSite, type SeenRequest, type TestSite } from './helpers/pages.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';
import { workerNode, type WorkerNode } from './helpers/worker-node.js';

/**
 * The asset cache's rules, each attacked on a one-page node with real Chromium. Such a node keeps two windows
 * (its page and a spare), each with a cache of its own, taken least recently used first: two renders in a row
 * leave something in both, so whatever a render left is what the next client meets.
 */

const secret = [200, 0, 0] as const;
const everyone = [0, 0, 200] as const;
/** Cacheable for ten minutes, and the same URL whoever asks: only the request's credentials change the answer. */
const cacheable = 'public, max-age=600';

/** A stylesheet painting #box red for a request that carries `has`, blue otherwise. */
function secretStylesheet(has: (req: { headers: http.IncomingHttpHeaders }) => boolean) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const color = has(req) ? secret : everyone;
    res.writeHead(200, { 'content-type': 'text/css', 'cache-control': cacheable }).end(`#box{background:rgb(${color.join(',')})}`);
  };
}

const hasCookie = (req: { headers: http.IncomingHttpHeaders }) => String(req.headers.cookie ?? '').includes('secret=1');
const hasHeader = (req: { headers: http.IncomingHttpHeaders }) => req.headers['x-secret'] === '1';
const hasAuth = (req: { headers: http.IncomingHttpHeaders }) => req.headers.authorization !== undefined;

const box = '<div id="box" style="width:100px;height:50px"></div>';
const styledWith = (href: string) => page(box, `<link rel="stylesheet" href="${href}">`);

/** A page that reports the Resource Timing transferSize of `asset` to its own site, then shows #done. */
const timingProbe = (asset: string) =>
  page(
    `<img src="${asset}" width="10" height="10">`,
    `<script>addEventListener('load', async () => {
      const entry = performance.getEntriesByType('resource').find((e) => e.name === ${JSON.stringify(asset)});
      await fetch('/report?phase=timing', { method: 'POST', body: JSON.stringify({ transferSize: entry ? entry.transferSize : -1 }) });
      const done = document.createElement('div'); done.id = 'done'; document.body.appendChild(done);
    })</script>`,
  );

/** A page that asks /api/xhr with XMLHttpRequest and /api/fetch with fetch(), then shows #done. */
const apiCaller = page(
  '<p>api</p>',
  `<script>addEventListener('load', async () => {
    await new Promise((resolve) => { const x = new XMLHttpRequest(); x.onloadend = resolve; x.open('GET', '/api/xhr'); x.send(); });
    await fetch('/api/fetch');
    const done = document.createElement('div'); done.id = 'done'; document.body.appendChild(done);
  })</script>`,
);

const tinyGif = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');

function colorAt(answer: Answer): Rgba {
  return decodePng(ok(answer)).at(50, 25);
}

async function cacheResponses(node: { url: string }): Promise<Record<string, number>> {
  const metrics = await request(`${node.url}/metrics`);
  return metricValues(metrics.bytes.toString('utf8'), 'shotfleet_asset_cache_responses_total', 'source');
}

describe('asset cache on (the default)', () => {
  let site: TestSite;
  /** Another site (127.0.0.2) embedding the same asset as `site`. */
  let otherSite: TestSite;
  /** Where the shared asset lives (127.0.0.3), a third party to both pages. */
  let assets: TestSite;
  let node: WorkerNode;

  beforeAll(async () => {
    assets = await startTestSite({}, { host: '127.0.0.3' });
    assets.route('/shared.gif', { body: tinyGif, type: 'image/gif', headers: { 'cache-control': cacheable, 'timing-allow-origin': '*' } });
    site = await startTestSite({
      '/cookie.css': secretStylesheet(hasCookie),
      '/header.css': secretStylesheet(hasHeader),
      '/auth.css': secretStylesheet(hasAuth),
      '/with-cookie': styledWith('/cookie.css'),
      '/with-header': styledWith('/header.css'),
      '/with-auth': styledWith('/auth.css'),
      '/plain': page(box),
      '/login': { body: page('<p>signed in</p>'), headers: { 'set-cookie': 'secret=1; Path=/', 'cache-control': 'no-store' } },
      '/document': { body: page(box, '<style>#box{background:rgb(0,0,200)}</style>'), headers: { 'cache-control': cacheable } },
      '/api-caller': apiCaller,
      '/api/xhr': { body: '{"n":1}', type: 'application/json', headers: { 'cache-control': cacheable } },
      '/api/fetch': { body: '{"n":2}', type: 'application/json', headers: { 'cache-control': cacheable } },
      '/report': { body: 'ok', type: 'text/plain' },
    });
    otherSite = await startTestSite({ '/report': { body: 'ok', type: 'text/plain' } }, { host: '127.0.0.2' });
    site.route('/images', page(`${box}<img src="${assets.url}/shared.gif" width="10" height="10">`));
    site.route('/timing', timingProbe(`${assets.url}/shared.gif`));
    otherSite.route('/timing', timingProbe(`${assets.url}/shared.gif`));
    node = await workerNode();
  });

  afterAll(async () => {
    await Promise.all([site?.close(), otherSite?.close(), assets?.close()]);
  });

  const shot = (body: Record<string, unknown>, cookie?: string) => shoot(node.url, { viewport: { width: 200, height: 100 }, ...body }, { cookie });

  /**
   * Renders `confidential` three times, which must have fetched the secret version from the site (its request log:
   * a session may reuse what it fetched itself) and shown it, then `path` twice as a client with nothing: both must show the version everyone gets.
   */
  async function attack(confidential: () => Promise<Answer>, path: string, sheet: string, carriesSecret: (req: SeenRequest) => boolean): Promise<void> {
    const fetched = site.hits(sheet);
    for (let i = 0; i < 3; i++) assertColor(decodePng(ok(await confidential())), 50, 25, [...secret]);
    expect(site.hits(sheet), `${sheet} fetched by the confidential renders`).toBeGreaterThan(fetched);
    expect(site.requests(sheet).slice(fetched).every(carriesSecret)).toBe(true);
    for (let i = 0; i < 2; i++) {
      expect(colorAt(await shot({ url: `${site.url}${path}` })), `anonymous render ${i + 1}`).toEqual([...everyone, 255]);
    }
  }

  it('a stylesheet fetched with the cookies option is not what the next client gets', async () => {
    await attack(() => shot({ url: `${site.url}/with-cookie`, cookies: [{ name: 'secret', value: '1' }] }), '/with-cookie', '/cookie.css', hasCookie);
  });

  it('likewise with headers', async () => {
    await attack(() => shot({ url: `${site.url}/with-header`, headers: { 'x-secret': '1' } }), '/with-header', '/header.css', hasHeader);
  });

  it('likewise with authenticate', async () => {
    await attack(() => shot({ url: `${site.url}/with-auth`, authenticate: { username: 'u', password: 'p' } }), '/with-auth', '/auth.css', hasAuth);
  });

  it('likewise with scripts that set a cookie and load the stylesheet', async () => {
    const scripts = `document.cookie = 'secret=1; path=/';
      new Promise((resolve) => { const l = document.createElement('link'); l.rel = 'stylesheet'; l.href = '/cookie.css'; l.onload = l.onerror = resolve; document.head.appendChild(l); })`;
    await attack(() => shot({ url: `${site.url}/plain`, scripts }), '/with-cookie', '/cookie.css', hasCookie);
  });

  it("likewise with html, which is written into the blank page the site's last render left and so fetches as the site", async () => {
    for (let i = 0; i < 2; i++) ok(await shot({ url: `${site.url}/plain` }));
    // A first-party frame signs the page in (its Set-Cookie), then the markup loads the stylesheet with that cookie.
    const loadSheet = `const l = document.createElement('link'); l.rel = 'stylesheet'; l.href = '${site.url}/cookie.css';
      l.onload = () => { const d = document.createElement('div'); d.id = 'done'; document.body.appendChild(d) }; document.head.appendChild(l)`;
    const html = page(
      `${box}<iframe src="${site.url}/login" style="position:absolute;left:150px;top:0;width:10px;height:10px" onload="${loadSheet.replaceAll('"', '&quot;')}"></iframe>`,
    );
    await attack(() => shot({ html, waitForSelector: '#done' }), '/with-cookie', '/cookie.css', hasCookie);
  });

  it('likewise with a session whose own page set the cookie', async () => {
    const session = 'shot_session=asset-cache';
    ok(await shot({ url: `${site.url}/login` }, session));
    await attack(() => shot({ url: `${site.url}/with-cookie` }, session), '/with-cookie', '/cookie.css', hasCookie);
  });

  it('a page on another site fetches the asset again and cannot tell by Resource Timing that it was cached', async () => {
    const transferSizes = async (on: TestSite, renders: number) => {
      const sizes: number[] = [];
      for (let i = 0; i < renders; i++) {
        ok(await shot({ url: `${on.url}/timing`, waitForSelector: '#done' }));
        sizes.push(JSON.parse(on.requests('/report').at(-1)!.body).transferSize);
      }
      return sizes;
    };
    // Three renders on two windows: at least one window renders twice and takes the asset from its cache — the
    // probe sees that (transferSize 0).
    const ownSite = await transferSizes(site, 3);
    expect(Math.min(...ownSite), `transfer sizes on the first site: ${ownSite}`).toBe(0);
    const fetched = assets.hits('/shared.gif');
    const other = await transferSizes(otherSite, 2);
    expect(assets.hits('/shared.gif') - fetched, 'fetches of the asset for the other site').toBeGreaterThanOrEqual(1);
    expect(other[0], `transfer sizes on the other site: ${other}`).toBeGreaterThan(0);
  });

  it('a document cacheable for ten minutes is fetched again on every render', async () => {
    const before = site.hits('/document');
    for (let i = 0; i < 4; i++) expect(colorAt(await shot({ url: `${site.url}/document` }))).toEqual([...everyone, 255]);
    expect(site.hits('/document')).toBe(before + 4);
  });

  it("the page's XHR and fetch() answers, cacheable for ten minutes, are fetched again on every render", async () => {
    const before = { xhr: site.hits('/api/xhr'), fetch: site.hits('/api/fetch') };
    for (let i = 0; i < 4; i++) ok(await shot({ url: `${site.url}/api-caller`, waitForSelector: '#done' }));
    expect({ xhr: site.hits('/api/xhr') - before.xhr, fetch: site.hits('/api/fetch') - before.fetch }).toEqual({ xhr: 4, fetch: 4 });
  });

  it('anonymous renders of one page fetch its images at most once per window, and the metric counts the reuse', async () => {
    const before = { fetched: assets.hits('/shared.gif'), counted: await cacheResponses(node) };
    for (let i = 0; i < 4; i++) expect(colorAt(await shot({ url: `${site.url}/images` }))).not.toEqual([...secret, 255]);
    // The windows may already hold it (earlier tests): fetched at most once per window, and never four times.
    expect(assets.hits('/shared.gif') - before.fetched).toBeLessThanOrEqual(2);
    const counted = await cacheResponses(node);
    expect(counted.cache - before.counted.cache).toBeGreaterThanOrEqual(2);
    // Documents always come from the network.
    expect(counted.network - before.counted.network).toBeGreaterThanOrEqual(4);
  });
});

describe('asset cache off', () => {
  let site: TestSite;
  let node: RunningProcess;

  beforeAll(async () => {
    site = await startTestSite({
      '/images': page(`${box}<img src="/image.gif" width="10" height="10">`),
      '/image.gif': { body: tinyGif, type: 'image/gif', headers: { 'cache-control': cacheable } },
    });
    node = await startShotfleet('serve', { SHOTFLEET_PAGES: '1', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1', SHOTFLEET_ASSET_CACHE: 'off' });
  });

  afterAll(async () => {
    await node?.stop();
    await site?.close();
  });

  it('every render fetches every asset', async () => {
    for (let i = 0; i < 3; i++) ok(await shoot(node.url, { url: `${site.url}/images`, viewport: { width: 200, height: 100 } }));
    expect(site.hits('/image.gif')).toBe(3);
    expect((await cacheResponses(node)).cache).toBe(0);
  });
});
