import { dropCache } from './asset-cache.js';
import type { PageSlot } from './page-slot.js';
import { partitionedStorageKeys } from './partitioned-storage.js';

/**
 * Wipes what a render left in its slot's context so the next client sees a fresh browser: leave the page for
 * about:blank, then clear what it stored. It reuses the warm window and costs ~90–120 ms of the machine's CPU
 * (`npm run bench:isolation`), against ~4× that for a new incognito context and window per request.
 * test/isolation.test.ts proves nothing crosses over: cookies, local/session storage, IndexedDB,
 * Cache Storage, service workers. Emulation is not undone here: the next render states its own (slot-emulation.ts).
 */
/** What a site can leave behind. Naming them is ~10× faster than 'all', which also wipes shader and interest-group stores. */
const siteStorage = 'cookies,local_storage,indexeddb,service_workers,cache_storage,file_systems,websql,storage_buckets,shared_storage';

export async function resetSlot(slot: PageSlot): Promise<void> {
  // Leaving the page first stops its scripts, timers and workers (and runs its unload handlers) before
  // its storage is wiped.
  await leavePage(slot);
  await clearLeftovers(slot);
}

/** Clears what the page left in its context and window: to be called once it is gone (leavePage). */
export async function clearLeftovers(slot: PageSlot): Promise<void> {
  const { cdp } = slot;
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
    // So does the session history: history.length would count earlier clients' pages and history.back()
    // would reopen them (from the back/forward cache, with their state).
    cdp.send('Page.resetNavigationHistory'),
  ]);
  // Last, once the page and its workers are gone and can fetch nothing more into it.
  if (slot.cacheToDrop) {
    await dropCache(cdp);
    slot.cacheToDrop = false;
  }
}

/**
 * Replaces the document with about:blank. Asked of the page itself (location.replace), the navigation
 * stays in the page's renderer process; the same navigation sent by the browser (page.goto) swaps in a
 * fresh renderer process and then another for the next site — ~4× slower, and the slot is held meanwhile.
 * A page whose scripts are off or that cannot leave that way (error pages) gets the slow path.
 *
 * This extra navigation is most of what isolation costs, half of it in the browser process, against ~500 ms
 * for the render itself (`npm run bench:isolation`).
 * Cheaper ways out were measured and each leaks: freezing the page (Page.setWebLifecycleState) stops its
 * timers, but its pagehide/unload handlers still run when the next render navigates and write into a same-
 * origin successor's storage; killing the renderer (Page.crash) leaves puppeteer's emulation calls hanging
 * until a navigation brings a renderer back, and emulation must come before the page loads; navigating
 * straight to the next URL keeps the previous client's page in the session history (history.back() in the
 * next page would show it) and lets late cookies reach third-party requests of the next render.
 */
export async function leavePage(slot: PageSlot): Promise<void> {
  if (await replaceFromInside(slot, 2_000)) {
    // The blank page keeps the old one's origin and renderer, and its storage connection: writes the old
    // page sent last (timers, unload handlers) are still in flight there, and a clear sent down the same
    // connection lands after them, where the browser-side wipe alone can land before.
    await slot.cdp.send('Runtime.evaluate', { expression: 'try { localStorage.clear(); sessionStorage.clear() } catch {}' });
    return;
  }
  await slot.page.goto('about:blank', { waitUntil: 'load', timeout: 10_000 });
}

/**
 * Asks the page itself to replace its document with about:blank (the fast way: it stays in the page's renderer
 * process) and waits for that load; resolves false when scripts are off or the page could not leave that way
 * (an error page, a page that does not answer in `timeoutMs`): the caller then navigates from the browser side.
 */
export async function replaceFromInside(slot: PageSlot, timeoutMs: number): Promise<boolean> {
  if (!slot.emulation.current().javascript) return false;
  try {
    await Promise.all([
      slot.page.waitForNavigation({ waitUntil: 'load', timeout: timeoutMs }),
      slot.cdp.send('Runtime.evaluate', { expression: 'location.replace("about:blank")' }),
    ]);
    return true;
  } catch {
    return false;
  }
}
