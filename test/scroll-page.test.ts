import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng, near } from './helpers/images.js';
import { page, startTestSite, type Route, type TestSite } from './helpers/pages.js';
import { workerNode, type WorkerNode } from './helpers/worker-node.js';
import { ok, shoot } from './helpers/node-client.js';

const green: [number, number, number] = [20, 180, 40];
const slotHeight = 300;
const images = 30;
const observed = 10;

/** A solid green PNG. */
function greenPng(): Buffer {
  const png = new PNG({ width: 40, height: 30 });
  for (let i = 0; i < png.data.length; i += 4) png.data.set([...green, 255], i);
  return PNG.sync.write(png);
}

/**
 * 30 `loading=lazy` images, then 10 blocks that an IntersectionObserver paints green once they come into view:
 * 40 slots of 300 px, 12000 px in all. Every slot starts white.
 */
const lazyPage = page(
  [
    ...Array.from({ length: images }, (_, i) => `<img loading="lazy" src="/img/${i}.png" style="display:block;width:400px;height:${slotHeight}px">`),
    ...Array.from({ length: observed }, () => `<div class="reveal" style="width:400px;height:${slotHeight}px"></div>`),
  ].join(''),
  `<script>
    addEventListener('DOMContentLoaded', () => {
      const io = new IntersectionObserver((entries) => {
        for (const e of entries) if (e.isIntersecting) { e.target.style.background = 'rgb(20,180,40)'; io.unobserve(e.target); }
      });
      document.querySelectorAll('.reveal').forEach((el) => io.observe(el));
    });
  </script>`,
);

describe('scrollPage: lazy images and observer-revealed content in a fullPage capture (a 1-page node)', () => {
  let site: TestSite;
  let node: WorkerNode;

  beforeAll(async () => {
    const routes: Record<string, Route> = { '/lazy': lazyPage };
    // Answered a little late, as images over a network are: one first asked for during the capture cannot make it.
    const image = greenPng();
    for (let i = 0; i < images; i++) {
      routes[`/img/${i}.png`] = (_req, res) => void setTimeout(() => res.writeHead(200, { 'content-type': 'image/png' }).end(image), 200);
    }
    site = await startTestSite(routes);
    node = await workerNode();
  });

  afterAll(async () => {
    await site?.close();
  });

  /**
   * Which of the 40 slots came out green, by the pixel at each one's middle. The capture is 100 px of the slots'
   * 400: what is loaded and revealed depends on the viewport's height, and a narrow 12 000 px PNG encodes quickly.
   */
  async function greenSlots(body: Record<string, unknown>): Promise<boolean[]> {
    const image = decodePng(ok(await shoot(node.url, { url: `${site.url}/lazy`, fullPage: true, viewport: { width: 100, height: 600 }, ...body })));
    expect(image.height).toBe((images + observed) * slotHeight);
    return Array.from({ length: images + observed }, (_, i) => near(image.at(50, i * slotHeight + slotHeight / 2), green));
  }

  it('with scrollPage every image and every observed block is in the image, then without it the far ones are blank again', async () => {
    const scrolled = await greenSlots({ scrollPage: true });
    expect(scrolled.map((g, i) => (g ? '' : i)).filter((x) => x !== '')).toEqual([]);

    const plain = await greenSlots({});
    const blank = plain.map((g, i) => (g ? -1 : i)).filter((i) => i >= 0);
    // Far below the first screen nothing was loaded or revealed: the last image and every observed block.
    expect(blank).toContain(images - 1);
    for (let i = images; i < images + observed; i++) expect(blank).toContain(i);
  });

  it('scrolls back to the top before a viewport capture', async () => {
    const shot = await shoot(node.url, { url: `${site.url}/lazy`, scrollPage: true, viewport: { width: 400, height: 600 } });
    const image = decodePng(ok(shot));
    expect([image.width, image.height]).toEqual([400, 600]);
    // The top of the page, not the bottom: the first image's slot.
    expect(near(image.at(200, 150), green)).toBe(true);
    expect(shot.headers.get('x-shotfleet-truncated')).toBeNull();
  });

  it('scrollPage must be a boolean and needs javascript', async () => {
    expect((await shoot(node.url, { url: `${site.url}/lazy`, scrollPage: 'yes' })).status).toBe(400);
    const noJs = await shoot(node.url, { url: `${site.url}/lazy`, scrollPage: true, javascript: false });
    expect(noJs.status).toBe(400);
    expect(JSON.stringify(noJs.json?.error?.details)).toContain('scrollPage');
  });
});
