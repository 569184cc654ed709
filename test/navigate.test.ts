import { TimeoutError } from 'puppeteer-core';
import { describe, expect, it } from 'vitest';
import { createOptionsSchema, parseRenderOptions } from '../src/request/options.js';
import { navigate } from '../src/render/navigate.js';
import type { NavigationOutcome, RenderPage } from '../src/render-pool/page-slot.js';

/** navigate()'s verdicts on a stand-in page whose goto fails as puppeteer's does; the real ones are in the browser tests. */
function pageFailing(err: Error, outcome: NavigationOutcome) {
  return {
    page: {
      goto: async () => {
        throw err;
      },
    },
    navigationOutcome: async () => outcome,
  } as unknown as RenderPage;
}

const schema = createOptionsSchema({ maxViewport: 4096, maxTimeoutMs: 60_000, defaultTimeoutMs: 30_000, maxPixels: 100_000_000 });
const options = parseRenderOptions(schema, { url: 'http://site.test/page' });
const load = (slot: RenderPage) => navigate(slot, options, () => 1000, new AbortController().signal);

describe('a failed navigation', () => {
  it("is a 502 with Chromium's net error, as the page's document request reported it", async () => {
    const failure = pageFailing(new Error('something else entirely'), { refusedHosts: [], failure: 'net::ERR_CONNECTION_REFUSED' });
    await expect(load(failure)).rejects.toMatchObject({ code: 'navigation_failed', message: expect.stringContaining('net::ERR_CONNECTION_REFUSED') });
  });

  it("is a 502 from Page.navigate's own error text when no document request reported (interception on)", async () => {
    const failure = pageFailing(new Error('net::ERR_BLOCKED_BY_CLIENT at http://site.test/page'), { refusedHosts: [] });
    await expect(load(failure)).rejects.toMatchObject({ code: 'navigation_failed', message: expect.stringContaining('net::ERR_BLOCKED_BY_CLIENT') });
  });

  it('is a 403 when the URL policy refused a host on its chain, and a 504 when it ran out of time', async () => {
    await expect(load(pageFailing(new Error('net::ERR_TUNNEL_CONNECTION_FAILED at x'), { refusedHosts: ['evil.test'] }))).rejects.toMatchObject({
      code: 'url_forbidden',
      details: { refusedHosts: ['evil.test'] },
    });
    await expect(load(pageFailing(new TimeoutError('Navigation timeout of 1000 ms exceeded'), { refusedHosts: ['evil.test'] }))).rejects.toMatchObject({
      code: 'timeout',
    });
  });

  it('passes anything else on unchanged (the render service then asks whether the page died)', async () => {
    const odd = new Error('Navigating frame was detached');
    await expect(load(pageFailing(odd, { refusedHosts: [] }))).rejects.toBe(odd);
  });
});
