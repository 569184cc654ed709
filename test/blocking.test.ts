import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertColor, decodePng } from './helpers/images.js';
import { page, startTestSite, type TestSite } from './helpers/pages.js';
import { workerNode, type WorkerNode } from './helpers/worker-node.js';
import { ok, shoot } from './helpers/node-client.js';

const green: [number, number, number] = [20, 180, 40];
const red: [number, number, number] = [220, 20, 30];

/** Paths real ad servers and trackers use (AdButler, AdvertPro, Quantcast, AddThis): on the test's own ad host. */
const adPaths = ['/adbutler/adserve.js', '/advertpro/servlet/view/banner', '/quant.js', '/js/addthis_widget.js'];

/** A script that, if it runs, paints a red ad box at (x, 0). */
const adScript = (x: number) =>
  `(() => { const d = document.createElement('div'); d.style.cssText = 'position:absolute;left:${x}px;top:0;width:100px;height:100px;background:rgb(220,20,30)'; document.body.appendChild(d); })();`;

/** The markup four consent managers put on a page, each a red panel over the green page. */
const consentBanners = [
  // OneTrust
  '<div id="onetrust-consent-sdk"><div id="onetrust-banner-sdk" style="position:fixed;left:0;top:200px;width:100px;height:100px;background:rgb(220,20,30)">We use cookies</div></div>',
  // Cookiebot
  '<div id="CybotCookiebotDialog" style="position:fixed;left:100px;top:200px;width:100px;height:100px;background:rgb(220,20,30)">Cookiebot</div>',
  // Didomi
  '<div id="didomi-host"><div id="didomi-notice" class="didomi-notice-banner" style="position:fixed;left:200px;top:200px;width:100px;height:100px;background:rgb(220,20,30)">Didomi</div></div>',
  // Quantcast Choice
  '<div id="qc-cmp2-container"><div id="qc-cmp2-main" style="position:fixed;left:300px;top:200px;width:100px;height:100px;background:rgb(220,20,30)"><div id="qc-cmp2-ui">Quantcast</div></div></div>',
];

describe('blockAds and blockCookieBanners (a 1-page node, lists shipped in the package)', () => {
  let site: TestSite;
  let ads: TestSite;
  let node: WorkerNode;
  const render = (body: Record<string, unknown>) => shoot(node.url, { viewport: { width: 400, height: 300 }, ...body });
  const adHits = () => adPaths.reduce((sum, path) => sum + ads.requests(path).length, 0);

  beforeAll(async () => {
    ads = await startTestSite(
      {
        '/adbutler/adserve.js': { body: adScript(0), type: 'text/javascript' },
        '/quant.js': { body: adScript(100), type: 'text/javascript' },
        '/js/addthis_widget.js': { body: adScript(200), type: 'text/javascript' },
        '/advertpro/servlet/view/banner': { body: page('', '<style>body{background:rgb(220,20,30);height:100vh}</style>') },
        '/app.js': { body: "document.body.dataset.app = 'ran';", type: 'text/javascript' },
      },
      { host: '127.0.0.2' },
    );
    site = await startTestSite({
      '/ads': page(
        `<iframe src="${ads.url}/advertpro/servlet/view/banner" style="position:absolute;left:300px;top:0;width:100px;height:100px;border:0"></iframe>
         <script src="${ads.url}/adbutler/adserve.js"></script><script src="${ads.url}/quant.js"></script>
         <script src="${ads.url}/js/addthis_widget.js"></script><script src="${ads.url}/app.js"></script>`,
        '<style>html,body{height:100%;background:rgb(20,180,40)}</style>',
      ),
      '/consent': page(consentBanners.join(''), '<style>html,body{height:100%;background:rgb(20,180,40)}</style>'),
    });
    node = await workerNode();
  });

  afterAll(async () => {
    await site?.close();
    await ads?.close();
  });

  it('blockAds: the ad and tracker requests are never made and no ad is in the image; the next render loads them again', async () => {
    const before = adHits();
    const appBefore = ads.requests('/app.js').length;
    const blocked = decodePng(ok(await render({ url: `${site.url}/ads`, blockAds: true })));
    expect(adHits()).toBe(before);
    // The page's own third-party script that is not an ad still loads.
    expect(ads.requests('/app.js').length).toBe(appBefore + 1);
    for (const x of [50, 150, 250, 350]) assertColor(blocked, x, 50, green);

    const plain = decodePng(ok(await render({ url: `${site.url}/ads` })));
    expect(adHits()).toBe(before + adPaths.length);
    for (const x of [50, 150, 250, 350]) assertColor(plain, x, 50, red);
  });

  it('blockCookieBanners: OneTrust, Cookiebot, Didomi and Quantcast banners are gone from the image; the next render shows them', async () => {
    const hidden = decodePng(ok(await render({ url: `${site.url}/consent`, blockCookieBanners: true })));
    for (const x of [50, 150, 250, 350]) assertColor(hidden, x, 250, green);

    const shown = decodePng(ok(await render({ url: `${site.url}/consent` })));
    for (const x of [50, 150, 250, 350]) assertColor(shown, x, 250, red);
  });

  it('both must be booleans', async () => {
    for (const body of [{ blockAds: 'yes' }, { blockCookieBanners: 1 }]) {
      const shot = await render({ url: `${site.url}/ads`, ...body });
      expect(shot.status).toBe(400);
      expect(JSON.stringify(shot.json?.error?.details)).toContain(Object.keys(body)[0]);
    }
  });
});
