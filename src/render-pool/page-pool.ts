import genericPool from 'generic-pool';
import type { Logger } from '../log/logger.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import type { PolicyProxy, UrlPolicy } from '../policy/index.js';
import { abortable } from '../async/abortable.js';
import { withTimeout } from '../async/timeout.js';
import { BrowserManager } from './browser-manager.js';
import type { LaunchOptions } from './launch.js';
import { closeSlot, openSlot, type PageSlot } from './page-slot.js';
import { resetSlot } from './reset-slot.js';

export interface PagePoolOptions {
  chromePath: string;
  /** Sandbox and environment for every browser the pool launches. */
  launch: LaunchOptions;
  pages: number;
  recycleAfter: number;
  /** SHOTFLEET_ASSET_CACHE. */
  assetCache: boolean;
  policy: UrlPolicy;
  startProxy: () => Promise<PolicyProxy>;
  log: Logger;
  metrics: NodeMetrics;
}

export interface PagePool {
  /**
   * Resolves with a clean page; rejects if `signal` aborts first (the page, if it comes later, goes back). How many
   * renders hold a page at once is admission's to bound (`pages`): only admitted requests ask.
   */
  acquire(signal: AbortSignal): Promise<PageSlot>;
  /** Gives a page back: wiped for the next client, or destroyed if it cannot be trusted. */
  release(slot: PageSlot): void;
  /** Opens a page outside the pool, for a sticky session's own context. */
  openExtraPage(): Promise<PageSlot>;
  closeExtraPage(slot: PageSlot): Promise<void>;
  /**
   * Starts the first browser and fills the pool; resolves when every page has been opened once — counted as they
   * open, not by polling for idle pages, which under traffic may never all be idle at once. Rejects if `signal`
   * aborts first (the pool goes on filling; close() ends it).
   */
  warm(signal?: AbortSignal): Promise<void>;
  size(): number;
  ready(): boolean;
  browserPids(): number[];
  close(): Promise<void>;
}

export function createPagePool(opts: PagePoolOptions): PagePool {
  const browsers = new BrowserManager({ ...opts, onRetired: () => void closeIdlePagesOfRetired() });
  const slotDeps = {
    policy: opts.policy,
    startProxy: opts.startProxy,
    log: opts.log,
    assetCache: { on: opts.assetCache, count: (source: 'cache' | 'network') => opts.metrics.assetCacheResponses.inc({ source }) },
  };
  let closed = false;

  async function open(): Promise<PageSlot> {
    // A browser that dies while a page opens in it is replaced; try the replacement before giving up.
    for (let attempt = 1; ; attempt++) {
      const browser = await browsers.acquire();
      try {
        const slot = await openSlot(browser, slotDeps);
        browsers.pageOpened(browser);
        return slot;
      } catch (err) {
        if (attempt >= 3 || closed) throw err;
        opts.log.warn({ err, attempt }, 'opening a page failed; retrying');
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }

  async function close(slot: PageSlot): Promise<void> {
    await closeSlot(slot);
    browsers.pageClosed(slot.browser);
  }

  // One window more than renders allowed: a released page is wiped (~90–120 ms of CPU, more under load) while
  // the next request already renders in the spare, instead of waiting for the wipe. Renders stay bounded by
  // `pages` through admission; the spare costs one idle window's memory.
  const slots = opts.pages + 1;
  let opened = 0;
  let allOpened: () => void = () => undefined;
  const warmed = new Promise<void>((resolve) => (allOpened = resolve));
  const pool = genericPool.createPool<PageSlot>(
    {
      create: async () => {
        const slot = await open();
        if (++opened >= slots) allOpened();
        return slot;
      },
      destroy: close,
      validate: async (slot) => !slot.broken && !slot.browser.dead && !slot.browser.retired,
    },
    { max: slots, min: slots, testOnBorrow: true, autostart: false },
  );
  pool.on('factoryCreateError', (err) => opts.log.error({ err }, 'could not open a page'));

  /**
   * Idle pages of a retired browser are only noticed when borrowed (validate fails), so on a quiet node
   * the old browser would live on beside its successor. Borrowing each idle page once closes those now
   * (the pool refills on the new browser); pages that pass go straight back.
   */
  async function closeIdlePagesOfRetired(): Promise<void> {
    const idle = await Promise.all(Array.from({ length: pool.available }, () => pool.acquire().catch(() => null)));
    for (const slot of idle) if (slot) pool.release(slot);
  }

  return {
    acquire(signal) {
      if (signal.aborted) return Promise.reject(signal.reason);
      // A client that left while waiting: whatever page arrives later goes straight back.
      return abortable(pool.acquire(), signal, (slot) => pool.release(slot));
    },

    release(slot) {
      browsers.countRender(slot.browser);
      if (slot.broken || slot.browser.dead || slot.browser.retired) {
        void pool.destroy(slot);
        return;
      }
      // A page whose renderer stopped answering after its capture must not keep its window forever; one whose
      // renderer is killed during the wipe is replaced at once (slot.gone), not after the whole bound.
      const wiped = withTimeout(Promise.race([resetSlot(slot), slot.gone]), 10_000, () => {
        throw new Error('the wipe took over 10 s');
      });
      wiped.then(
        () => {
          // Its browser may have been retired while the page was wiped: such a page would keep the old browser alive.
          if (!slot.usable() || slot.browser.retired) void pool.destroy(slot);
          else pool.release(slot);
        },
        (err) => {
          opts.log.warn({ err, slot: slot.id }, 'could not wipe a page; replacing it');
          slot.markBroken();
          void pool.destroy(slot);
        },
      );
    },

    openExtraPage: open,
    closeExtraPage: close,

    async warm(signal) {
      await abortable(browsers.acquire(), signal);
      pool.start();
      await abortable(warmed, signal);
    },
    size: () => opts.pages,
    ready: () => !closed && browsers.hasLiveBrowser(),
    browserPids: () => browsers.pids(),
    async close() {
      closed = true;
      browsers.stopReplacing();
      // Renders still holding a page (past the drain grace) are not waited for: their browser closes under them.
      const drained = pool.drain().catch(() => undefined);
      await withTimeout(drained, 2000, () => undefined);
      await pool.clear().catch(() => undefined);
      await browsers.close();
    },
  };
}
