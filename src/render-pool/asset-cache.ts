import type { CDPSession, Page } from 'puppeteer-core';
import type { Protocol } from 'puppeteer-core';

/**
 * The asset cache is Chromium's own HTTP cache, one per page slot (a browser context of its own; an incognito
 * context keeps it in memory, where Chromium bounds it and closing the context frees it). Chromium partitions it by
 * top-level site and frame site, so a page reads or times only what was fetched under its own site. What this file
 * adds are the rules Chromium does not know: documents and the page's own API answers are never kept, and what a
 * render with a client's credentials or code fetched is dropped before the next client.
 */

export type CacheSource = 'cache' | 'network';

/**
 * Sends every document, XHR and fetch request with `Cache-Control: no-cache`, which Chromium's HTTP cache reads as
 * "fetch from the network" (as a reload does), so those answers are always fetched afresh whatever their own headers
 * say. Marking the answers `no-store` instead (Fetch at the response stage) changes what the page sees, not what the
 * cache keeps: interception sits above the network service, whose cache has stored the answer by then. Only those
 * resource types pause (once each, on the page's own CDP session): scripts, stylesheets, images, fonts and media
 * flow without a round trip to the node.
 */
export async function keepDocumentsFresh(cdp: CDPSession): Promise<void> {
  cdp.on('Fetch.requestPaused', (event: Protocol.Fetch.RequestPausedEvent) => {
    const headers = Object.entries(event.request.headers)
      .filter(([name]) => name.toLowerCase() !== 'cache-control')
      .map(([name, value]) => ({ name, value }));
    headers.push({ name: 'Cache-Control', value: 'no-cache' });
    // Should the rewritten headers be refused, the request still goes on as it was: a paused request would otherwise
    // hold the render until its deadline.
    void cdp
      .send('Fetch.continueRequest', { requestId: event.requestId, headers })
      .catch(() => cdp.send('Fetch.continueRequest', { requestId: event.requestId }))
      .catch(() => undefined);
  });
  await cdp.send('Fetch.enable', { patterns: freshTypes.map((resourceType) => ({ urlPattern: '*', resourceType, requestStage: 'Request' as const })) });
}

const freshTypes: Protocol.Network.ResourceType[] = ['Document', 'XHR', 'Fetch'];

/**
 * Counts each http(s) response by where Chromium took it from. Puppeteer already follows the page's network events
 * for its own bookkeeping: this listens to what it emits and sends nothing more to the browser.
 */
export function countResponses(page: Page, count: (source: CacheSource) => void): void {
  page.on('response', (response) => {
    if (response.url().startsWith('http')) count(response.fromCache() ? 'cache' : 'network');
  });
}

/**
 * Drops the whole HTTP cache of the slot's context (every site, every frame, workers' fetches too): there is no call
 * that drops one render's entries, and a render's own page is not all that fetches for it.
 */
export async function dropCache(cdp: CDPSession): Promise<void> {
  await cdp.send('Network.clearBrowserCache');
}
