import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { css, decodePng, dimensions, isWebp, near, type Rgba } from './helpers/images.js';
import { page, startTestSite, type TestSite } from './helpers/pages.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';
import { workerNode, type WorkerNode } from './helpers/worker-node.js';
import { ok, shoot, shootGet } from './helpers/node-client.js';

/**
 * One request must not take the machine's memory (an 8192×40000 PNG takes ~5 GB), a webp over 16383 px a side
 * cannot be encoded, and a selector's box must come from Chromium's layout, not from what the page's own script
 * reports.
 */

const red: [number, number, number] = [220, 30, 40];
const blue: [number, number, number] = [20, 60, 200];

/** 20 000 CSS px: red, with a blue last 1000 px (so a cut image ends red and a whole one blue). */
const tallPage = page(`<div style="height:19000px;background:${css(red)}"></div><div style="height:1000px;background:${css(blue)}"></div>`);

/** A 50×50 element in a page whose script says every element is 3000×60000. */
const lyingPage = page(`
  <div style="height:120px"></div>
  <div id="box" style="margin-left:70px;width:50px;height:50px;background:${css(blue)}"></div>
  <script>
    Element.prototype.getBoundingClientRect = () => ({ x: 0, y: 0, left: 0, top: 0, right: 3000, bottom: 60000, width: 3000, height: 60000 });
    Document.prototype.querySelector = () => document.body;
  </script>`);

/** An element really 1000 × 60000 CSS px. */
const hugeElementPage = page(`<div id="huge" style="width:1000px;height:60000px;background:${css(blue)}"></div>`);

let browser: Browser;

/** Decodes an image with Chromium's own decoders: its size and the colour at (x, y). Throws when it is no image. */
async function decodeInChromium(bytes: Buffer, type: string, x: number, y: number): Promise<{ width: number; height: number; pixel: Rgba }> {
  const tab = await browser.newPage();
  try {
    return await tab.evaluate(
      async (b64: string, mime: string, px: number, py: number) => {
        const blob = await (await fetch(`data:${mime};base64,${b64}`)).blob();
        const bitmap = await createImageBitmap(blob);
        const canvas = new OffscreenCanvas(1, 1);
        const g = canvas.getContext('2d')!;
        g.drawImage(bitmap, px, py, 1, 1, 0, 0, 1, 1);
        const d = g.getImageData(0, 0, 1, 1).data;
        return { width: bitmap.width, height: bitmap.height, pixel: [d[0], d[1], d[2], d[3]] as [number, number, number, number] };
      },
      bytes.toString('base64'),
      type,
      x,
      y,
    );
  } finally {
    await tab.close();
  }
}

describe('pixel budget at the default SHOTFLEET_MAX_PIXELS (100 000 000)', () => {
  let site: TestSite;
  let node: WorkerNode;

  beforeAll(async () => {
    site = await startTestSite({ '/tall': tallPage, '/lying': lyingPage });
    node = await workerNode();
    browser = await puppeteer.launch({ executablePath: '/usr/lib/chromium/chromium', headless: true, pipe: true, args: ['--no-sandbox', '--disable-gpu'] });
  });
  afterAll(async () => {
    await browser?.close();
    await site?.close();
  });

  it('a 4096×4096 viewport at deviceScaleFactor 3 (151 Mpx) is a 400 before any render, by POST and by GET', async () => {
    const post = await shoot(node.url, { url: `${site.url}/tall`, viewport: { width: 4096, height: 4096, deviceScaleFactor: 3 } });
    expect(post.status).toBe(400);
    expect(post.json?.error?.code).toBe('invalid_request');
    expect(post.json?.error?.message).toMatch(/SHOTFLEET_MAX_PIXELS/);
    expect(post.json?.error?.details?.fields).toEqual([expect.objectContaining({ field: 'viewport' })]);
    const get = await shootGet(node.url, { url: `${site.url}/tall`, width: '4096', height: '4096', deviceScaleFactor: '3' });
    expect(get.status).toBe(400);
    expect(site.hits('/tall')).toBe(0);
  });

  it('a clip over the budget and a webp viewport over 16383 px a side are 400s too', async () => {
    const clip = await shoot(node.url, {
      html: '<p>x</p>',
      viewport: { width: 800, height: 600, deviceScaleFactor: 4 },
      clip: { x: 0, y: 0, width: 4000, height: 4000 },
    });
    expect(clip.status).toBe(400);
    expect(clip.json?.error?.details?.fields).toEqual([expect.objectContaining({ field: 'clip' })]);
    const webp = await shoot(node.url, { html: '<p>x</p>', format: 'webp', viewport: { width: 4096, height: 100, deviceScaleFactor: 4 } });
    expect(webp.status).toBe(400);
    expect(webp.json?.error?.message).toMatch(/16383/);
  });

  it('a webp fullPage of a 20 000 px page is a decodable image cut to 16383 px, marked truncated', async () => {
    const shot = await shoot(
      node.url,
      // 100 px wide: the cut is a matter of height, and webp encodes a narrow image in a fraction of the time.
      { url: `${site.url}/tall`, format: 'webp', fullPage: true, viewport: { width: 100, height: 600, deviceScaleFactor: 1 }, timeout: 60_000 },
      { timeoutMs: 90_000 },
    );
    const bytes = ok(shot);
    expect(isWebp(bytes)).toBe(true);
    expect(shot.headers.get('x-shotfleet-truncated')).toBe('true');
    const decoded = await decodeInChromium(bytes, 'image/webp', 50, 16_380);
    expect({ width: decoded.width, height: decoded.height }).toEqual({ width: 100, height: 16_383 });
    expect(near(decoded.pixel, red, 12), `pixel near the bottom is ${decoded.pixel}`).toBe(true);
  });

  it('a selector on a page that lies about its boxes captures the real 50×50 element', async () => {
    const shot = await shoot(node.url, { url: `${site.url}/lying`, selector: '#box' });
    const image = decodePng(ok(shot));
    expect({ width: image.width, height: image.height }).toEqual({ width: 50, height: 50 });
    expect(near(image.at(25, 25), blue)).toBe(true);
    expect(shot.headers.get('x-shotfleet-truncated')).toBeNull();
  });
});

describe('pixel budget cuts what is known only during the render (SHOTFLEET_MAX_PIXELS=2000000)', () => {
  let site: TestSite;
  let node: RunningProcess;

  beforeAll(async () => {
    site = await startTestSite({ '/tall': tallPage, '/huge': hugeElementPage });
    node = await startShotfleet('serve', { SHOTFLEET_PAGES: '1', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1', SHOTFLEET_MAX_PIXELS: '2000000' });
  });
  afterAll(async () => {
    await node?.stop();
    await site?.close();
  });

  it('an element really 1000×60000 px is cut to 1000×2000 and marked', async () => {
    const shot = await shoot(node.url, { url: `${site.url}/huge`, selector: '#huge' });
    const bytes = ok(shot);
    expect(dimensions(bytes)).toMatchObject({ width: 1000, height: 2000 });
    expect(shot.headers.get('x-shotfleet-truncated')).toBe('true');
  });

  it('a fullPage at deviceScaleFactor 2 is cut to the budget in device pixels (800×2500)', async () => {
    const shot = await shoot(node.url, { url: `${site.url}/tall`, fullPage: true, viewport: { width: 400, height: 600, deviceScaleFactor: 2 } });
    const bytes = ok(shot);
    const size = dimensions(bytes);
    expect(size.width * size.height).toBeLessThanOrEqual(2_000_000);
    expect(size).toMatchObject({ width: 800, height: 2500 });
    expect(shot.headers.get('x-shotfleet-truncated')).toBe('true');
  });

  it('a viewport within the budget still renders whole (1000×800 = 0.8 Mpx)', async () => {
    const shot = await shoot(node.url, { url: `${site.url}/tall`, viewport: { width: 1000, height: 800, deviceScaleFactor: 1 } });
    expect(dimensions(ok(shot))).toMatchObject({ width: 1000, height: 800 });
    expect(shot.headers.get('x-shotfleet-truncated')).toBeNull();
  });
});
