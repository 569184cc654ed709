import type { BrowserContext, CDPSession, HTTPRequest, Page } from 'puppeteer-core';
import type { Logger } from '../log/logger.js';
import type { PolicyProxy, UrlPolicy } from '../policy/index.js';
import type { BrowserHandle } from './browser-manager.js';

/** What the render in progress wants done with each request its page makes. */
export interface RequestRules {
  blockResourceTypes: ReadonlySet<string>;
  /** Called for every sub-request refused by the URL policy (logged, not fatal). */
  onRefused(url: string, reason: string): void;
}

/**
 * A warm page in a browser context of its own. The context is what keeps concurrent renders apart
 * (cookies, storage and cache are per context); between renders the pool wipes it through CDP
 * (see reset-slot.ts), which is far cheaper than a new context and window per request.
 */
export interface PageSlot {
  id: number;
  browser: BrowserHandle;
  context: BrowserContext;
  page: Page;
  /** The page's own CDP session: captures go through it and skip puppeteer's per-browser screenshot lock. */
  cdp: CDPSession;
  proxy: PolicyProxy | null;
  rules: RequestRules | null;
  /** http(s) origins the page touched since the last reset: their storage is cleared. */
  origins: Set<string>;
  /** Origins of documents loaded in the main frame and in subframes since the last reset: third-party storage is keyed by both. */
  documentOrigins: { top: Set<string>; frames: Set<string> };
  /** Hosts the main frame navigated to (page and redirects) in the current render, and those the policy refused. */
  navigation: { hosts: Set<string>; refused: string[] };
  /** Page settings a render changed that the next reset must put back. */
  dirty: Set<'userAgent' | 'headers' | 'media' | 'javascript' | 'background' | 'interception'>;
  /** Request interception on: only while a render blocks resource types (see handleRequest). */
  intercepting: boolean;
  /** Set when the page can no longer be trusted (deadline passed mid-render, protocol error): destroy it. */
  broken: boolean;
  renders: number;
}

let nextSlotId = 1;
export const defaultWindow = { width: 1280, height: 800 };

export interface SlotDeps {
  policy: UrlPolicy;
  startProxy: () => Promise<PolicyProxy>;
  log: Logger;
}

export async function openSlot(browser: BrowserHandle, deps: SlotDeps): Promise<PageSlot> {
  const proxy = deps.policy.active ? await deps.startProxy() : null;
  let context: BrowserContext | null = null;
  try {
    context = await browser.launched.browser.createBrowserContext(
      proxy ? { proxyServer: proxy.proxyServer, proxyBypassList: ['<-loopback>'] } : {},
    );
    // A window, not a tab: background tabs stall captures by seconds (FIELD-NOTES).
    const page = await context.newPage({ type: 'window', windowBounds: defaultWindow });
    const cdp = await page.createCDPSession();
    const slot: PageSlot = {
      id: nextSlotId++,
      browser,
      context,
      page,
      cdp,
      proxy,
      rules: null,
      origins: new Set(),
      documentOrigins: { top: new Set(), frames: new Set() },
      navigation: { hosts: new Set(), refused: [] },
      dirty: new Set(),
      intercepting: false,
      broken: false,
      renders: 0,
    };
    await prepareGuards(slot, deps);
    return slot;
  } catch (err) {
    await context?.close().catch(() => undefined);
    await proxy?.close();
    throw err;
  }
}

export async function closeSlot(slot: PageSlot): Promise<void> {
  slot.broken = true;
  const closing = slot.browser.dead ? Promise.resolve() : slot.context.close().catch(() => undefined);
  // A page stuck in `while(true){}` still closes: the browser process kills its renderer.
  await Promise.race([closing, new Promise((r) => setTimeout(r, 5000).unref())]);
  await slot.proxy?.close();
}

/** Set once per page: dialogs dismissed, popups closed, downloads refused, every request vetted. */
async function prepareGuards(slot: PageSlot, deps: SlotDeps): Promise<void> {
  const { page, context } = slot;
  page.on('dialog', (dialog) => void dialog.dismiss().catch(() => undefined));
  context.on('targetcreated', (target) => {
    if (target.opener() && target.type() === 'page') {
      void target
        .page()
        .then((popup) => popup?.close())
        .catch(() => undefined);
    }
  });
  page.on('request', (request) => handleRequest(slot, deps.policy, request));
  await Promise.all([
    // The HTTP cache is per context but outlives a render; with it off nothing cached by one client
    // can be timed or read by the next.
    page.setCacheEnabled(false),
    denyDownloads(slot),
    // window.open floods end here, before any target is created.
    page.evaluateOnNewDocument(() => {
      window.open = () => null;
    }),
  ]);
}

/**
 * Sent on the page's own session, not on a session to the browser target: detaching such a session makes
 * puppeteer forget the browser target, and every later page open (sessions, replaced slots) then fails
 * with "Browser target is not found".
 */
async function denyDownloads(slot: PageSlot): Promise<void> {
  await slot.cdp.send('Browser.setDownloadBehavior', { behavior: 'deny', browserContextId: slot.context.id });
}

/**
 * Every request is observed (origins to wipe, the main frame's navigation chain), but held for a verdict
 * only while interception is on. The URL policy does not need it: when the policy is active every
 * http(s)/ws request goes through the slot's filtering proxy, which refuses what it must; non-network
 * schemes (file:, chrome:) Chromium itself refuses to web pages. Interception costs a round trip to
 * the node per request, so it is switched on only for renders with blockResourceTypes.
 */
export async function setInterception(slot: PageSlot, on: boolean): Promise<void> {
  if (slot.intercepting === on) return;
  slot.intercepting = on;
  if (on) slot.dirty.add('interception');
  await slot.page.setRequestInterception(on);
}

function handleRequest(slot: PageSlot, policy: UrlPolicy, request: HTTPRequest): void {
  const url = request.url();
  const verdict = policy.quickCheck(url);
  const mainNavigation = request.isNavigationRequest() && request.frame() === slot.page.mainFrame();
  if (mainNavigation) slot.navigation.hosts.add(hostOf(url));
  const intercepted = slot.intercepting && !request.isInterceptResolutionHandled();
  if (!verdict.ok) {
    if (mainNavigation) slot.navigation.refused.push(hostOf(url));
    slot.rules?.onRefused(url, verdict.reason);
    if (intercepted) void request.abort('accessdenied').catch(() => undefined);
    return;
  }
  if (intercepted && slot.rules?.blockResourceTypes.has(request.resourceType())) {
    void request.abort('blockedbyclient').catch(() => undefined);
    return;
  }
  if (url.startsWith('http')) {
    try {
      const { origin } = new URL(url);
      slot.origins.add(origin);
      if (request.isNavigationRequest()) (mainNavigation ? slot.documentOrigins.top : slot.documentOrigins.frames).add(origin);
    } catch {
      // unparsable URLs never reach the network anyway
    }
  }
  if (intercepted) void request.continue().catch(() => undefined);
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}
