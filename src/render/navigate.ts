import { TimeoutError } from 'puppeteer-core';
import { ShotError } from '../errors/shot-error.js';
import type { PageSlot } from '../render-pool/page-slot.js';
import type { RenderOptions } from './options.js';

/**
 * Loads the page (url or html) and waits for the asked readiness. Maps what can go wrong to the
 * contract's errors: a page or redirect the URL policy refused → 403, an unreachable target → 502,
 * a load that does not finish in time → 504.
 */
export async function navigate(slot: PageSlot, options: RenderOptions, remaining: () => number): Promise<void> {
  const { page } = slot;
  slot.proxy?.takeRefusals();
  slot.navigation = { hosts: new Set(), refused: [] };
  if (options.cookies?.length) {
    await page.setCookie(
      ...options.cookies.map((c) => (c.domain ? { ...c, path: c.path ?? '/' } : { ...c, url: options.url })),
    );
  }
  try {
    if (options.html !== undefined) {
      const networkIdle = options.waitUntil.startsWith('networkidle');
      await page.setContent(options.html, { waitUntil: networkIdle ? 'load' : (options.waitUntil as 'load'), timeout: remaining() });
      if (networkIdle) {
        await page.waitForNetworkIdle({ idleTime: 500, concurrency: options.waitUntil === 'networkidle0' ? 0 : 2, timeout: remaining() });
      }
      return;
    }
    const response = await page.goto(options.url!, { waitUntil: options.waitUntil, timeout: remaining() });
    if (response?.headers()['x-shotfleet-refused']) throw refused(options.url!, [new URL(response.url()).hostname]);
  } catch (err) {
    if (err instanceof ShotError) throw err;
    // Only a refusal on the page's own navigation chain makes a 403; a refused image is not why a page failed.
    const refusals = [...slot.navigation.refused, ...(slot.proxy?.takeRefusals() ?? []).filter((h) => slot.navigation.hosts.has(h))];
    if (refusals.length > 0 && !(err instanceof TimeoutError)) throw refused(options.url!, refusals);
    if (err instanceof TimeoutError) {
      throw new ShotError('timeout', `the page did not reach "${options.waitUntil}" before the deadline; raise timeout or use waitUntil "domcontentloaded"`);
    }
    const message = err instanceof Error ? err.message : String(err);
    if (/net::ERR_|Navigation failed|Cannot navigate/.test(message)) {
      throw new ShotError('navigation_failed', `could not load the page: ${message.split('\n')[0]}`, { url: options.url });
    }
    throw err;
  }
}

function refused(url: string, hosts: string[]): ShotError {
  return new ShotError('url_forbidden', 'the URL policy refused the page or one of its redirects', { url, refusedHosts: hosts });
}
