import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertColor, css, decodePng, type DecodedPng } from './helpers/images.js';
import { page, startTestSite, type TestSite } from './helpers/pages.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';
import { workerNode, type WorkerNode } from './helpers/worker-node.js';
import { ok, shoot, shootGet } from './helpers/node-client.js';

type Rgb = [number, number, number];

/** `count` colours, each at least 40 apart from every other on some channel, so no band can pass for another. */
function palette(count: number): Rgb[] {
  const colours: Rgb[] = [];
  for (let i = 0; colours.length < count; i++) {
    const c: Rgb = [(i * 97 + 30) % 256, (i * 57 + 90) % 256, (i * 151 + 10) % 256];
    if (colours.every((o) => o.some((v, k) => Math.abs(v - c[k]) >= 40))) colours.push(c);
    if (i > 10_000) throw new Error('palette: could not find enough distinct colours');
  }
  return colours;
}

/** A page of `count` full-width bands, each `bandHeight` CSS px tall and its own colour. */
function bands(colours: Rgb[], bandHeight: number): string {
  return page(colours.map((c) => `<div style="height:${bandHeight}px;background:${css(c)}"></div>`).join(''));
}

/** Checks every band from the top down to `upTo` (image px) at its middle and 2 px inside both edges. */
function assertBands(image: DecodedPng, colours: Rgb[], bandHeight: number, upTo = image.height, scale = 1): number {
  let checked = 0;
  const x = Math.floor(image.width / 2);
  colours.forEach((colour, i) => {
    const top = i * bandHeight * scale;
    const bottom = (i + 1) * bandHeight * scale;
    for (const y of [top + 2, Math.floor((top + bottom) / 2), bottom - 3]) {
      if (y >= upTo) continue;
      assertColor(image, x, y, colour, 4);
      assertColor(image, 1, y, colour, 4);
      checked++;
    }
  });
  return checked;
}

describe('fullPage on tall pages (default cap 20 000 px)', () => {
  let site: TestSite;
  let node: WorkerNode;
  const colours = palette(40);

  beforeAll(async () => {
    site = await startTestSite({ '/bands-20000': bands(colours, 500) });
    node = await workerNode();
  });

  afterAll(async () => {
    await site?.close();
  });

  it('a 20 000 px page of 40 bands comes out whole: every band where it belongs, past the GPU texture limit too', async () => {
    // The texture limit (16 384 px) is a matter of height: a narrow page crosses it as a wide one does, and encodes
    // in a fraction of the time (1280×20 000 px takes seconds on 2 cores, hence the generous deadline all the same).
    const viewport = { width: 200, height: 800 };
    const shot = await shoot(node.url, { url: `${site.url}/bands-20000`, fullPage: true, viewport, timeout: 60_000 }, { timeoutMs: 110_000 });
    const image = decodePng(ok(shot));
    expect([image.width, image.height]).toEqual([200, 20_000]);
    // Exactly the cap is not a truncation.
    expect(shot.headers.get('x-shotfleet-truncated')).toBeNull();
    expect(assertBands(image, colours, 500)).toBe(40 * 3);
    // The last rows belong to the last band (a repeated or blank tile would show here first).
    assertColor(image, 100, 19_999, colours[39], 4);
  }, 120_000);
});

describe('fullPage cap (SHOTFLEET_MAX_PAGE_HEIGHT=3000)', () => {
  let site: TestSite;
  let node: RunningProcess;
  const colours = palette(12);

  beforeAll(async () => {
    site = await startTestSite({
      '/exact': bands(colours, 250), // 12 × 250 = 3000
      '/taller': bands(colours, 300), // 12 × 300 = 3600
      '/short': page(`<div style="height:50px;background:${css(colours[0])}"></div>`),
      '/thousand': bands(colours.slice(0, 4), 250),
    });
    node = await startShotfleet('serve', { SHOTFLEET_PAGES: '1', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1', SHOTFLEET_MAX_PAGE_HEIGHT: '3000' });
  });

  afterAll(async () => {
    await node?.stop();
    await site?.close();
  });

  it('a page exactly as tall as the cap is not truncated', async () => {
    const shot = await shoot(node.url, { url: `${site.url}/exact`, fullPage: true, viewport: { width: 80, height: 400 } });
    const image = decodePng(ok(shot));
    expect([image.width, image.height]).toEqual([80, 3000]);
    expect(shot.headers.get('x-shotfleet-truncated')).toBeNull();
    expect(assertBands(image, colours, 250)).toBe(12 * 3);
  });

  it('a taller page is cut to the cap and says so; what is kept is the top of the page', async () => {
    const shot = await shoot(node.url, { url: `${site.url}/taller`, fullPage: true, viewport: { width: 80, height: 400 } });
    const image = decodePng(ok(shot));
    expect([image.width, image.height]).toEqual([80, 3000]);
    expect(shot.headers.get('x-shotfleet-truncated')).toBe('true');
    // Bands 0–9 fill 0–2999; band 10 would start at 3000.
    expect(assertBands(image, colours, 300)).toBe(10 * 3);
    assertColor(image, 40, 2999, colours[9], 4);
  });

  it('the same through GET /screenshot?fullPage=true', async () => {
    const shot = await shootGet(node.url, { url: `${site.url}/taller`, fullPage: 'true', width: '80', height: '400' });
    expect(decodePng(ok(shot)).height).toBe(3000);
    expect(shot.headers.get('x-shotfleet-truncated')).toBe('true');
  });

  it('a page shorter than the viewport gives the viewport', async () => {
    const shot = await shoot(node.url, { url: `${site.url}/short`, fullPage: true, viewport: { width: 80, height: 300 } });
    const image = decodePng(ok(shot));
    expect([image.width, image.height]).toEqual([80, 300]);
    assertColor(image, 40, 25, colours[0], 4);
    assertColor(image, 40, 200, [255, 255, 255], 4);
    expect(shot.headers.get('x-shotfleet-truncated')).toBeNull();
  });

  it('fullPage at deviceScaleFactor 2 doubles every band', async () => {
    const shot = await shoot(node.url, { url: `${site.url}/thousand`, fullPage: true, viewport: { width: 80, height: 300, deviceScaleFactor: 2 } });
    const image = decodePng(ok(shot));
    expect([image.width, image.height]).toEqual([160, 2000]);
    expect(assertBands(image, colours.slice(0, 4), 250, image.height, 2)).toBe(4 * 3);
  });

  it('a fullPage render leaves the next viewport render its own size', async () => {
    await shoot(node.url, { url: `${site.url}/taller`, fullPage: true, viewport: { width: 80, height: 400 } });
    const image = decodePng(ok(await shoot(node.url, { url: `${site.url}/taller`, viewport: { width: 80, height: 400 } })));
    expect([image.width, image.height]).toEqual([80, 400]);
    assertColor(image, 40, 10, colours[0], 4);
    assertColor(image, 40, 350, colours[1], 4);
  });
});
