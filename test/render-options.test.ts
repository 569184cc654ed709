import { KnownDevices } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertColor, css, decodePng, dimensions, isJpeg, isPng, isWebp } from './helpers/images.js';
import { page, startTestSite, type TestSite } from './helpers/pages.js';
import { workerNode, type WorkerNode } from './helpers/worker-node.js';
import { ok, shoot, shootGet } from './helpers/node-client.js';

const red = [220, 20, 30] as const;
const green = [20, 180, 40] as const;
const blue = [30, 40, 210] as const;
const yellow = [240, 210, 10] as const;
const white = [255, 255, 255] as const;
const black = [0, 0, 0] as const;
const rgb = (c: readonly number[]) => [c[0], c[1], c[2]] as [number, number, number];

/** A div at an absolute place, so its pixels are where the test expects them. */
const box = (x: number, y: number, w: number, h: number, colour: readonly number[], attrs = '') =>
  `<div ${attrs} style="position:absolute;left:${x}px;top:${y}px;width:${w}px;height:${h}px;background:${css(colour)}"></div>`;

/** Four quadrants of the viewport, each its own colour, whatever its size. */
const quadrants = page(
  ['left:0;top:0', 'right:0;top:0', 'left:0;bottom:0', 'right:0;bottom:0']
    .map((place, i) => `<div style="position:fixed;${place};width:50vw;height:50vh;background:${css([red, green, blue, yellow][i])}"></div>`)
    .join(''),
);

describe('render options on a real node (pixels decoded and checked)', () => {
  let site: TestSite;
  let node: WorkerNode;

  beforeAll(async () => {
    site = await startTestSite({
      '/quadrants': quadrants,
      '/seen': page(box(0, 0, 50, 50, green)),
      '/with-image': page(`<img src="/pic.png" width="20" height="20">`),
      '/pic.png': { body: Buffer.from('89504e470d0a1a0a', 'hex'), type: 'image/png' },
      '/noisy': page(
        `<canvas id="c" width="400" height="300"></canvas><script>
          const g = document.getElementById('c').getContext('2d'); let s = 7;
          const rnd = () => (s = (s * 16807) % 2147483647) % 256;
          for (let y = 0; y < 300; y += 2) for (let x = 0; x < 400; x += 2) { g.fillStyle = 'rgb(' + rnd() + ',' + rnd() + ',' + rnd() + ')'; g.fillRect(x, y, 2, 2); }
        </script>`,
      ),
    });
    node = await workerNode();
  });

  afterAll(async () => {
    await site?.close();
  });

  it('viewport width and height set the image size and the page lays out to it', async () => {
    const image = decodePng(ok(await shoot(node.url, { url: `${site.url}/quadrants`, viewport: { width: 640, height: 480 } })));
    expect([image.width, image.height]).toEqual([640, 480]);
    assertColor(image, 10, 10, rgb(red));
    assertColor(image, 629, 10, rgb(green));
    assertColor(image, 10, 469, rgb(blue));
    assertColor(image, 629, 469, rgb(yellow));
    // The quadrant edges sit at the middle of the asked size, not of the default 1280×800.
    assertColor(image, 318, 238, rgb(red));
    assertColor(image, 322, 242, rgb(yellow));
  });

  it("the default viewport is 1280×800 and a later request is not left with an earlier one's size", async () => {
    await shoot(node.url, { url: `${site.url}/quadrants`, viewport: { width: 333, height: 222 } });
    await shoot(node.url, { url: `${site.url}/quadrants`, viewport: { width: 333, height: 222 } });
    const image = decodePng(ok(await shoot(node.url, { url: `${site.url}/quadrants` })));
    expect([image.width, image.height]).toEqual([1280, 800]);
    assertColor(image, 1270, 790, rgb(yellow));
  });

  it('deviceScaleFactor 2 doubles the image size and draws each CSS pixel as 2×2', async () => {
    const html = page(box(0, 0, 300, 200, white) + box(100, 50, 10, 10, red));
    const image = decodePng(ok(await shoot(node.url, { html, viewport: { width: 300, height: 200, deviceScaleFactor: 2 } })));
    expect([image.width, image.height]).toEqual([600, 400]);
    assertColor(image, 200, 100, rgb(red));
    assertColor(image, 219, 119, rgb(red));
    assertColor(image, 221, 121, rgb(white));
    assertColor(image, 198, 98, rgb(white));
  });

  it('a device preset sets size, scale and user agent; isMobile gives the page touch', async () => {
    const device = KnownDevices['Pixel 5'];
    const before = site.hits('/seen');
    const shot = ok(await shoot(node.url, { url: `${site.url}/seen`, device: 'Pixel 5' }));
    const { width, height } = dimensions(shot);
    expect([width, height]).toEqual([device.viewport.width * device.viewport.deviceScaleFactor!, device.viewport.height * device.viewport.deviceScaleFactor!]);
    expect(site.hits('/seen')).toBe(before + 1);
    expect(site.requests('/seen').at(-1)!.headers['user-agent']).toBe(device.userAgent);

    const touchPage = page(`<script>document.body.style.background = 'ontouchstart' in window ? '${css(green)}' : '${css(red)}'</script>`);
    const mobile = decodePng(ok(await shoot(node.url, { html: touchPage, viewport: { width: 200, height: 100, isMobile: true } })));
    assertColor(mobile, 100, 50, rgb(green));
    const desktop = decodePng(ok(await shoot(node.url, { html: touchPage, viewport: { width: 200, height: 100 } })));
    assertColor(desktop, 100, 50, rgb(red));
  });

  it('the user agent of a device preset does not stick to the next request', async () => {
    await shoot(node.url, { url: `${site.url}/seen`, device: 'Pixel 5' });
    await shoot(node.url, { url: `${site.url}/seen`, device: 'Pixel 5' });
    await shoot(node.url, { url: `${site.url}/seen` });
    expect(site.requests('/seen').at(-1)!.headers['user-agent']).not.toContain('Pixel 5');
  });

  it('clip captures exactly that region', async () => {
    const html = page(box(0, 0, 400, 300, white) + box(100, 100, 50, 50, red));
    const inside = decodePng(ok(await shoot(node.url, { html, viewport: { width: 400, height: 300 }, clip: { x: 100, y: 100, width: 50, height: 50 } })));
    expect([inside.width, inside.height]).toEqual([50, 50]);
    for (const [x, y] of [
      [0, 0],
      [49, 0],
      [0, 49],
      [49, 49],
      [25, 25],
    ])
      assertColor(inside, x, y, rgb(red));

    const edge = decodePng(ok(await shoot(node.url, { html, viewport: { width: 400, height: 300 }, clip: { x: 90, y: 90, width: 20, height: 20 } })));
    expect([edge.width, edge.height]).toEqual([20, 20]);
    assertColor(edge, 2, 2, rgb(white));
    assertColor(edge, 17, 17, rgb(red));
  });

  it('selector captures the element, and an absent one is 422 selector_not_found', async () => {
    const html = page(box(0, 0, 800, 600, white) + box(130, 170, 120, 80, blue, 'id="target"'));
    const image = decodePng(ok(await shoot(node.url, { html, selector: '#target' })));
    expect([image.width, image.height]).toEqual([120, 80]);
    for (const [x, y] of [
      [0, 0],
      [119, 0],
      [0, 79],
      [119, 79],
      [60, 40],
    ])
      assertColor(image, x, y, rgb(blue));

    const missing = await shoot(node.url, { html, selector: '#nowhere' });
    expect(missing.status).toBe(422);
    expect(missing.json?.error?.code).toBe('selector_not_found');
  });

  it("omitBackground leaves the page's background transparent and its content opaque", async () => {
    const html = `<!doctype html><html><body style="margin:0">${box(20, 20, 40, 40, red)}</body></html>`;
    const clear = decodePng(ok(await shoot(node.url, { html, viewport: { width: 100, height: 100 }, omitBackground: true })));
    expect(clear.at(5, 5)[3]).toBe(0);
    expect(clear.at(95, 95)[3]).toBe(0);
    assertColor(clear, 40, 40, [...rgb(red), 255]);

    // Without it (and on the next request, which must not inherit the override) the background is white.
    const opaque = decodePng(ok(await shoot(node.url, { html, viewport: { width: 100, height: 100 } })));
    assertColor(opaque, 5, 5, [...rgb(white), 255]);
  });

  it('colorScheme dark reaches prefers-color-scheme', async () => {
    const html = page('', `<style>body{background:${css(white)};height:100vh}@media (prefers-color-scheme: dark){body{background:${css(black)}}}</style>`);
    const dark = decodePng(ok(await shoot(node.url, { html, viewport: { width: 100, height: 100 }, colorScheme: 'dark' })));
    assertColor(dark, 50, 50, rgb(black));
    const light = decodePng(ok(await shoot(node.url, { html, viewport: { width: 100, height: 100 }, colorScheme: 'light' })));
    assertColor(light, 50, 50, rgb(white));
  });

  it('reducedMotion reaches prefers-reduced-motion and freezes CSS animations', async () => {
    const html = page(
      box(0, 0, 50, 50, red, 'id="m"') + box(50, 0, 50, 50, red, 'id="a"'),
      `<style>@media (prefers-reduced-motion: reduce){#m{background:${css(green)}!important}}
        @keyframes paint{from{background:${css(blue)}}to{background:${css(blue)}}}
        #a{animation:paint 100s infinite}</style>`,
    );
    const still = decodePng(ok(await shoot(node.url, { html, viewport: { width: 100, height: 50 }, reducedMotion: true })));
    assertColor(still, 25, 25, rgb(green));
    assertColor(still, 75, 25, rgb(red)); // the animation is off: its own colour shows
    const moving = decodePng(ok(await shoot(node.url, { html, viewport: { width: 100, height: 50 } })));
    assertColor(moving, 25, 25, rgb(red));
    assertColor(moving, 75, 25, rgb(blue));
  });

  it('mediaType print applies print styles', async () => {
    const html = page('', `<style>body{background:${css(white)};height:100vh}@media print{body{background:${css(green)}}}</style>`);
    const printed = decodePng(ok(await shoot(node.url, { html, viewport: { width: 100, height: 100 }, mediaType: 'print' })));
    assertColor(printed, 50, 50, rgb(green));
    const screen = decodePng(ok(await shoot(node.url, { html, viewport: { width: 100, height: 100 } })));
    assertColor(screen, 50, 50, rgb(white));
  });

  it('javascript false keeps scripts from running, and the next request has scripts again', async () => {
    const html = page(`<script>document.body.style.background = '${css(green)}'</script>`, '<style>body{height:100vh}</style>');
    const off = decodePng(ok(await shoot(node.url, { html, viewport: { width: 100, height: 100 }, javascript: false })));
    assertColor(off, 50, 50, rgb(white));
    const on = decodePng(ok(await shoot(node.url, { html, viewport: { width: 100, height: 100 } })));
    assertColor(on, 50, 50, rgb(green));
  });

  it('hideSelectors hides the named elements and css injects a stylesheet', async () => {
    const html = page(box(0, 0, 50, 50, red, 'class="ad"') + box(50, 0, 50, 50, red, 'id="banner"') + box(0, 50, 100, 50, blue, 'id="keep"'));
    const image = decodePng(
      ok(
        await shoot(node.url, {
          html,
          viewport: { width: 100, height: 100 },
          hideSelectors: ['.ad', '#banner'],
          css: `#keep{background:${css(yellow)}!important}`,
        }),
      ),
    );
    assertColor(image, 25, 25, rgb(white));
    assertColor(image, 75, 25, rgb(white));
    assertColor(image, 50, 75, rgb(yellow));
  });

  it("headers, cookies and userAgent reach the page's server", async () => {
    ok(
      await shoot(node.url, {
        url: `${site.url}/seen`,
        headers: { 'x-shot-test': 'header-value' },
        cookies: [{ name: 'flavour', value: 'oat' }],
        userAgent: 'shotfleet-test-agent/1.0',
      }),
    );
    const seen = site.requests('/seen').at(-1)!;
    expect(seen.headers['x-shot-test']).toBe('header-value');
    expect(seen.headers.cookie).toContain('flavour=oat');
    expect(seen.headers['user-agent']).toBe('shotfleet-test-agent/1.0');

    // None of it is carried into the next request.
    ok(await shoot(node.url, { url: `${site.url}/seen` }));
    const next = site.requests('/seen').at(-1)!;
    expect(next.headers['x-shot-test']).toBeUndefined();
    expect(next.headers.cookie ?? '').not.toContain('flavour');
    expect(next.headers['user-agent']).not.toBe('shotfleet-test-agent/1.0');
  });

  it('waitForSelector waits for a late element; one that never comes is a 504', async () => {
    const html = page(
      '<script>setTimeout(() => { const d = document.createElement("div"); d.id = "late"; document.body.appendChild(d); document.body.style.background = "' +
        css(green) +
        '" }, 600)</script>',
      '<style>body{height:100vh}</style>',
    );
    const image = decodePng(ok(await shoot(node.url, { html, viewport: { width: 100, height: 100 }, waitForSelector: '#late' })));
    assertColor(image, 50, 50, rgb(green));

    const never = await shoot(node.url, { html, viewport: { width: 100, height: 100 }, waitForSelector: '#never', timeout: 1500 });
    expect(never.status).toBe(504);
    expect(never.json?.error?.code).toBe('timeout');
  });

  it('delay waits before the capture', async () => {
    const html = page(`<script>setTimeout(() => document.body.style.background = '${css(green)}', 500)</script>`, '<style>body{height:100vh}</style>');
    const image = decodePng(ok(await shoot(node.url, { html, viewport: { width: 100, height: 100 }, delay: 2000 })));
    assertColor(image, 50, 50, rgb(green));
  });

  it('blockResourceTypes: a blocked image is never requested', async () => {
    const before = site.hits('/pic.png');
    ok(await shoot(node.url, { url: `${site.url}/with-image`, blockResourceTypes: ['image'] }));
    expect(site.hits('/with-image')).toBeGreaterThan(0);
    expect(site.hits('/pic.png')).toBe(before);
    // The same page without the block does fetch it: the count above could have moved.
    ok(await shoot(node.url, { url: `${site.url}/with-image` }));
    expect(site.hits('/pic.png')).toBe(before + 1);
  });

  it('jpeg and webp: magic bytes, Content-Type and size', async () => {
    for (const [format, looksRight] of [
      ['jpeg', isJpeg],
      ['webp', isWebp],
    ] as const) {
      const shot = await shoot(node.url, { url: `${site.url}/quadrants`, format, viewport: { width: 320, height: 240 } });
      expect(shot.headers.get('content-type')).toBe(`image/${format}`);
      expect(looksRight(ok(shot))).toBe(true);
      expect(dimensions(shot.bytes)).toMatchObject({ width: 320, height: 240 });
    }
    const png = await shoot(node.url, { url: `${site.url}/quadrants`, viewport: { width: 320, height: 240 } });
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(isPng(ok(png))).toBe(true);
  });

  it('jpeg quality changes the encoding: q10 is smaller than q95', async () => {
    const q10 = ok(await shoot(node.url, { url: `${site.url}/noisy`, format: 'jpeg', quality: 10, viewport: { width: 400, height: 300 } }));
    const q95 = ok(await shoot(node.url, { url: `${site.url}/noisy`, format: 'jpeg', quality: 95, viewport: { width: 400, height: 300 } }));
    expect(isJpeg(q10) && isJpeg(q95)).toBe(true);
    expect(q10.length * 2).toBeLessThan(q95.length);
  });

  it('optimizeForSpeed still gives a correct png', async () => {
    const image = decodePng(ok(await shoot(node.url, { url: `${site.url}/quadrants`, optimizeForSpeed: true, viewport: { width: 200, height: 100 } })));
    expect([image.width, image.height]).toEqual([200, 100]);
    assertColor(image, 10, 10, rgb(red));
    assertColor(image, 190, 90, rgb(yellow));
  });

  it('GET /screenshot takes the scalar options as query parameters', async () => {
    const jpeg = await shootGet(node.url, { url: `${site.url}/quadrants`, format: 'jpeg', width: '300', height: '150', quality: '90' });
    expect(jpeg.headers.get('content-type')).toBe('image/jpeg');
    expect(dimensions(ok(jpeg))).toMatchObject({ width: 300, height: 150, type: 'jpg' });

    const png = decodePng(ok(await shootGet(node.url, { url: `${site.url}/quadrants`, width: '200', height: '100', deviceScaleFactor: '2' })));
    expect([png.width, png.height]).toEqual([400, 200]);
    assertColor(png, 10, 10, rgb(red));
    assertColor(png, 390, 190, rgb(yellow));

    const bad = await shootGet(node.url, { url: `${site.url}/quadrants`, width: 'wide' });
    expect(bad.status).toBe(400);
    expect(bad.json?.error?.code).toBe('invalid_request');
  });

  it('responses carry Server-Timing and X-Shotfleet-Node; errors carry the node too', async () => {
    const status = await (await fetch(`${node.url}/status`)).json();
    const shot = await shoot(node.url, { html: page('hello'), viewport: { width: 100, height: 100 } });
    ok(shot);
    expect(shot.headers.get('server-timing')).toMatch(/^queue;dur=\d+(\.\d+)?, render;dur=\d+(\.\d+)?$/);
    expect(shot.headers.get('x-shotfleet-node')).toBe(status.node);

    const bad = await shoot(node.url, { html: page('hello'), selector: '#absent' });
    expect(bad.status).toBe(422);
    expect(bad.headers.get('x-shotfleet-node')).toBe(status.node);
  });

  it('html input renders the given markup', async () => {
    const image = decodePng(ok(await shoot(node.url, { html: page(box(10, 10, 30, 30, blue)), viewport: { width: 60, height: 60 } })));
    assertColor(image, 25, 25, rgb(blue));
    assertColor(image, 50, 50, rgb(white));
  });

  it.each([
    ['quality with png', { quality: 50 }],
    ['device and viewport together', { device: 'Pixel 5', viewport: { width: 100, height: 100 } }],
    ['an unknown device', { device: 'Nokia 3310 deluxe' }],
    ['clip with fullPage', { clip: { x: 0, y: 0, width: 10, height: 10 }, fullPage: true }],
    ['clip with selector', { clip: { x: 0, y: 0, width: 10, height: 10 }, selector: 'body' }],
    ['a width above SHOTFLEET_MAX_VIEWPORT', { viewport: { width: 4097, height: 100 } }],
    ['deviceScaleFactor above 4', { viewport: { width: 100, height: 100, deviceScaleFactor: 5 } }],
    ['a delay above 10000 ms', { delay: 10_001 }],
    ['an unknown field', { colour: 'red' }],
    ['an unknown resource type', { blockResourceTypes: ['pictures'] }],
    ['omitBackground with jpeg', { format: 'jpeg', omitBackground: true }],
    ['a deviceScaleFactor below 0.1', { viewport: { width: 100, height: 100, deviceScaleFactor: 1e-300 } }],
    ['an invalid waitForSelector (answered at once, not at the deadline)', { waitForSelector: '###', timeout: 60_000 }],
    ['an invalid hideSelectors entry', { hideSelectors: ['body', 'a[['] }],
  ])('400 invalid_request for %s', async (_, extra) => {
    const shot = await shoot(node.url, { html: page('x'), ...extra });
    expect(shot.status).toBe(400);
    expect(shot.json?.error?.code).toBe('invalid_request');
  });
});
