import type { CDPSession } from 'puppeteer-core';
import type { Page } from 'puppeteer-core';
import type { PageSlot } from '../../src/render-pool/page-slot.js';
import { defaultWindow } from '../../src/request/viewport.js';
import { createEmulationState } from '../../src/render-pool/slot-emulation.js';
import { clearLeftovers, leavePage } from '../../src/render-pool/reset-slot.js';

/**
 * Ways to give the next request a clean page, for `npm run bench:isolation -- --candidates`. Each is measured
 * on a slot of its own (the node's openSlot), render and wipe alike, so a wipe that moves cost into the next
 * render (a cross-site navigation from a live page, a cold window) is charged for it.
 */
export interface WipeCandidate {
  name: string;
  /** What it changes against the node's wipe, and whether it is known to isolate. */
  note: string;
  /** Request fields for its renders (default: a plain png of the URL). */
  options?: Record<string, unknown>;
  /** Changes the slot once before the first render. */
  prepare?(slot: PageSlot): Promise<void>;
  wipe(slot: PageSlot): Promise<void>;
}

/** puppeteer's own session to the page (internal API: an experiment, not for src/). */
const ownSession = (slot: PageSlot) => (slot.page as unknown as { _client(): CDPSession })._client();

/**
 * A session to the browser target, opened once per slot and never detached (detaching one makes puppeteer forget
 * the browser target): Storage.clearCookies takes a browserContextId only there.
 */
const browserSessions = new WeakMap<PageSlot['context'], Promise<CDPSession>>();
function browserSession(slot: PageSlot): Promise<CDPSession> {
  if (!browserSessions.has(slot.context)) browserSessions.set(slot.context, slot.page.browser().target().createCDPSession());
  return browserSessions.get(slot.context)!;
}

/** Emulation a client sets on every request: what "skip emulation equal to the slot's state" would save. */
const otherViewport = { viewport: { width: 1024, height: 768 } };
const darkAgent = { colorScheme: 'dark', userAgent: 'bench-agent/1.0' };

/**
 * Gives a slot another page or CDP session (experiments only): its emulation state starts afresh on them, as the
 * node's does on a new page.
 */
function swap(slot: PageSlot, page: Page, cdp: CDPSession): void {
  const parts = slot as unknown as { page: Page; cdp: CDPSession; emulation: PageSlot['emulation'] };
  parts.page = page;
  parts.cdp = cdp;
  parts.emulation = createEmulationState({ page, cdp, browserContextId: slot.context.id, browserUserAgent: () => page.browser().userAgent() });
}

/** The wipe before the slot kept its emulation as a state: every setting a render changed was put back. */
async function wipeUndoingEmulation(slot: PageSlot): Promise<void> {
  await leavePage(slot);
  await Promise.all([clearLeftovers(slot), slot.emulate({ userAgent: {}, media: { type: '', features: [] } })]);
}

export const wipeCandidates: WipeCandidate[] = [
  {
    name: 'node (leave + clear)',
    note: "today's resetSlot: location.replace('about:blank'), localStorage/sessionStorage clear, then cookies, touched origins, history, window.name",
    wipe: async (slot) => {
      await leavePage(slot);
      await clearLeftovers(slot);
    },
  },
  {
    name: 'one CDP session',
    note: "slot.cdp is puppeteer's own session to the page instead of a second one (captures, clears and emulation on one session)",
    prepare: async (slot) => {
      await slot.cdp.detach();
      swap(slot, slot.page, ownSession(slot));
    },
    wipe: async (slot) => {
      await leavePage(slot);
      await clearLeftovers(slot);
    },
  },
  {
    name: 'context-wide cookie clear',
    note: 'Storage.clearCookies({browserContextId}) instead of Network.clearBrowserCookies; the rest as the node',
    wipe: async (slot) => {
      await leavePage(slot);
      const cdp = new Proxy(slot.cdp, {
        get(target, prop) {
          if (prop === 'send') {
            return (method: string, params?: object) =>
              method === 'Network.clearBrowserCookies'
                ? browserSession(slot).then((browserCdp) => browserCdp.send('Storage.clearCookies', { browserContextId: slot.context.id }))
                : target.send(method as never, params as never);
          }
          const value = Reflect.get(target, prop);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      // The same clear through a session that swaps the one call; the slot's sets are shared, so it empties them.
      await clearLeftovers({ ...slot, cdp });
    },
  },
  {
    name: "clear 'all' storage types",
    note: "Storage.clearDataForOrigin with storageTypes 'all' for each touched origin instead of the named site types",
    wipe: async (slot) => {
      const origins = [...slot.origins];
      await leavePage(slot);
      await clearLeftovers(slot);
      await Promise.all(origins.map((origin) => slot.cdp.send('Storage.clearDataForOrigin', { origin, storageTypes: 'all' })));
    },
  },
  {
    name: 'browser-side leave',
    note: "page.goto('about:blank') (the fallback for pages without script): a new renderer process each time",
    wipe: async (slot) => {
      await slot.page.goto('about:blank', { waitUntil: 'load', timeout: 10_000 });
      await clearLeftovers(slot);
    },
  },
  {
    name: 'no leave (reference)',
    note: 'clearLeftovers alone, the page left loaded: does NOT isolate (timers and unload handlers of the old page write into the next); the floor of any wipe that keeps the window',
    wipe: (slot) => clearLeftovers(slot),
  },
  {
    name: 'new window (reference)',
    note: 'close the window, open a new one in the same context, then clear: the rejected alternative (963 ms machine CPU a render measured before)',
    wipe: async (slot) => {
      await slot.page.close();
      const page = await slot.context.newPage({ type: 'window', windowBounds: defaultWindow });
      await page.setViewport({ ...defaultWindow });
      await page.setCacheEnabled(false);
      page.on('request', (request) => {
        const url = request.url();
        if (url.startsWith('http')) slot.origins.add(new URL(url).origin);
      });
      swap(slot, page, await page.createCDPSession());
      await clearLeftovers(slot);
    },
  },
  {
    name: 'viewport 1024×768, undone',
    note: 'renders asking for a 1024×768 viewport every time; the wipe puts 1280×800 back each time (the node did until this bench)',
    options: otherViewport,
    wipe: async (slot) => {
      await leavePage(slot);
      await clearLeftovers(slot);
      await Promise.all([
        slot.page.setViewport({ ...defaultWindow, deviceScaleFactor: 1, isMobile: false, hasTouch: false }),
        slot.cdp.send('Emulation.setDeviceMetricsOverride', { ...defaultWindow, deviceScaleFactor: 1, mobile: false }),
      ]);
    },
  },
  {
    name: 'viewport 1024×768, kept',
    note: "the same renders with the node's wipe, which leaves the viewport in place: the next render's equal viewport is not sent",
    options: otherViewport,
    wipe: async (slot) => {
      await leavePage(slot);
      await clearLeftovers(slot);
    },
  },
  {
    name: 'dark + user agent, undone',
    note: 'renders asking for colorScheme dark and a user agent every time; the wipe undoes both each time (the node did until emulation became a state)',
    options: darkAgent,
    wipe: wipeUndoingEmulation,
  },
  {
    name: 'dark + user agent, kept',
    note: "the same renders with the node's wipe: emulation is a state, the next render sends only settings that differ, so neither is sent again",
    options: darkAgent,
    wipe: async (slot) => {
      await leavePage(slot);
      await clearLeftovers(slot);
    },
  },
];
