import type { BrowserContext, CDPSession, HTTPRequest, Page } from 'puppeteer-core';
import type { Logger } from '../log/logger.js';
import type { PolicyProxy, UrlPolicy } from '../policy/index.js';
import type { BrowserHandle } from './browser-manager.js';

/** What the render in progress wants done with each request its page makes. */
export interface RequestRules {
  blockResourceTypes: ReadonlySet<string>;
  /** Another reason to refuse a request (ad and tracker lists), asked only while interception is on. */
  blocks?(request: HTTPRequest): boolean;
  /** Headers to add to a request (credentials scoped to one origin), asked only while interception is on. */
  extraHeaders?(url: string): Record<string, string> | undefined;
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
  dirty: Set<'userAgent' | 'media' | 'javascript' | 'background' | 'interception'>;
  /** Undo steps a render registered for settings of its own (time zone, locale, permissions…): run once at the next reset. */
  undo: (() => Promise<unknown>)[];
  /** Request interception on: only while a render blocks resource types (see handleRequest). */
  intercepting: boolean;
  /** Set when the page can no longer be trusted (deadline passed mid-render, protocol error): destroy it. */
  broken: boolean;
  /** Set when the page's renderer crashed or was killed, or its target went away: every call on it fails or hangs. */
  crashed: boolean;
  /** Rejects with a PageCrashedError the moment the page crashes: a render races its steps against it. */
  gone: Promise<never>;
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
    // A window, not a tab: with 2+ plain tabs, capturing a background one stalled ~4 s, with 4 it could hang until the protocol timed out.
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
      undo: [],
      intercepting: false,
      broken: false,
      crashed: false,
      gone: new Promise<never>(() => undefined),
      renders: 0,
    };
    slot.gone = watchForCrash(slot);
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

/** A page whose renderer died: the render on it is retried once on another page, never answered 500. */
export class PageCrashedError extends Error {
  constructor(why: string) {
    super(`the page's renderer went away (${why})`);
  }
}

/**
 * Chromium reports a killed or crashed renderer to the page's sessions (puppeteer's 'error' event); a target that
 * closes under a render is as fatal. Without this, a render on a dead renderer waits for a load event that never
 * comes, until its deadline.
 */
function watchForCrash(slot: PageSlot): Promise<never> {
  const gone = new Promise<never>((_, reject) => {
    const fail = (why: string) => {
      if (slot.crashed) return;
      slot.crashed = true;
      slot.broken = true;
      reject(new PageCrashedError(why));
    };
    slot.page.once('error', (err) => fail(err instanceof Error ? err.message : String(err)));
    slot.page.once('close', () => fail('its target closed'));
  });
  gone.catch(() => undefined);
  return gone;
}

/**
 * Whether the page's renderer answers: a round trip to it, raced against its crash report. When many renderers die
 * at once (an OOM kill, a killed process group), Chromium reports each death a little apart, and an idle page can
 * look healthy until its own report arrives.
 */
export async function answers(slot: PageSlot, timeoutMs = 2000): Promise<boolean> {
  if (slot.crashed || slot.broken || slot.browser.dead) return false;
  const probe = slot.cdp.send('Runtime.evaluate', { expression: '0' }).then(
    () => true,
    () => false,
  );
  const verdict = await Promise.race([probe, slot.gone.catch(() => false), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref())]);
  return verdict && !slot.crashed;
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
 * the node per request, so it is switched on only for renders that need it (blockResourceTypes, blockAds,
 * headers and authenticate, which go to one origin only).
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
  if (intercepted && (slot.rules?.blockResourceTypes.has(request.resourceType()) || slot.rules?.blocks?.(request))) {
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
  if (!intercepted) return;
  const extra = slot.rules?.extraHeaders?.(url);
  void request.continue(extra ? { headers: { ...request.headers(), ...extra } } : undefined).catch(() => undefined);
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}
