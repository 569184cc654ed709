import type { PageSlot } from './page-slot.js';
import { defaultWindow } from './page-slot.js';
import { partitionedStorageKeys } from './partitioned-storage.js';

/**
 * Wipes what a render left in its slot's context so the next client sees a fresh browser.
 * Measured against the alternative (a new incognito context and window per request, ~4× slower per
 * FIELD-NOTES): about:blank + a handful of CDP calls cost a few ms and reuse the warm window.
 * test/isolation.test.ts proves nothing crosses over: cookies, local/session storage, IndexedDB,
 * Cache Storage, service workers.
 */
/** What a site can leave behind. Naming them is ~10× faster than 'all', which also wipes shader and interest-group stores. */
const siteStorage = 'cookies,local_storage,indexeddb,service_workers,cache_storage,file_systems,websql,storage_buckets,shared_storage';

export async function resetSlot(slot: PageSlot): Promise<void> {
  const { page, cdp } = slot;
  // Leaving the page first stops its scripts, timers and workers before their storage is wiped.
  await page.goto('about:blank', { waitUntil: 'load', timeout: 10_000 });
  const origins = [...slot.origins];
  slot.origins.clear();
  const partitioned = partitionedStorageKeys(slot.documentOrigins.top, slot.documentOrigins.frames);
  slot.documentOrigins.top.clear();
  slot.documentOrigins.frames.clear();
  await Promise.all([
    cdp.send('Network.clearBrowserCookies'),
    ...origins.map((origin) => cdp.send('Storage.clearDataForOrigin', { origin, storageTypes: siteStorage })),
    ...partitioned.map((storageKey) => cdp.send('Storage.clearDataForStorageKey', { storageKey, storageTypes: siteStorage })),
    // window.name belongs to the tab, not to a site: it survives navigations within the reused window.
    cdp.send('Runtime.evaluate', { expression: 'window.name = ""' }),
    resetEmulation(slot),
  ]);
}

/** Puts back the page settings a render changed, keeping cookies and storage (sessions use this alone). */
export async function resetEmulation(slot: PageSlot): Promise<void> {
  const settings = [...slot.dirty];
  slot.dirty.clear();
  await Promise.all(settings.map((setting) => undo(slot, setting)));
}

async function undo(slot: PageSlot, setting: PageSlot['dirty'] extends Set<infer T> ? T : never): Promise<void> {
  const { page, cdp } = slot;
  switch (setting) {
    case 'userAgent':
      return cdp.send('Emulation.setUserAgentOverride', { userAgent: await page.browser().userAgent() });
    case 'headers':
      return page.setExtraHTTPHeaders({});
    case 'media':
      return cdp.send('Emulation.setEmulatedMedia', { media: '', features: [] });
    case 'javascript':
      return page.setJavaScriptEnabled(true);
    case 'background':
      return cdp.send('Emulation.setDefaultBackgroundColorOverride', {});
    case 'viewport':
      await Promise.all([
        page.setViewport({ ...defaultWindow, deviceScaleFactor: 1, isMobile: false, hasTouch: false }),
        // Not clearDeviceMetricsOverride: the page would fall back to the window's inner size (1280×713).
        cdp.send('Emulation.setDeviceMetricsOverride', { ...defaultWindow, deviceScaleFactor: 1, mobile: false }),
      ]);
      return;
  }
}
