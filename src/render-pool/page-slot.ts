import type { BrowserContext, CDPSession, HTTPRequest, Page } from 'puppeteer-core';
import { withTimeout } from '../async/timeout.js';
import type { Logger } from '../log/logger.js';
import type { PolicyProxy, UrlPolicy } from '../policy/index.js';
import { countResponses, keepDocumentsFresh, type CacheSource } from './asset-cache.js';
import type { BrowserHandle } from './browser-manager.js';
import { defaultWindow } from '../request/viewport.js';
import { createEmulationState, type Emulation, type EmulationState } from './slot-emulation.js';

/** What the render in progress wants done with each request its page makes. */
export interface RequestRules {
  blockResourceTypes: ReadonlySet<string>;
  /** Another reason to refuse a request (ad and tracker lists), asked only while interception is on. */
  blocks?(request: HTTPRequest): boolean;
  /** Headers to add to a request (credentials scoped to one origin), asked only while interception is on. */
  extraHeaders?(url: string): Record<string, string> | undefined;
  /** Called for every sub-request refused by the URL policy (logged, not fatal). */
  onRefused(url: string, reason: string): void;
  /**
   * The render carries a client's credentials or code: nothing it fetches may be served to another client, so the
   * slot's HTTP cache is dropped before the page is handed on (asset-cache.ts).
   */
  confidential: boolean;
}

/** What a render may do with its page: render/ drives `page` and `cdp`, and asks the slot for what it must remember. */
export interface RenderPage {
  readonly id: number;
  readonly page: Page;
  /** The page's own CDP session: captures go through it and skip puppeteer's per-browser screenshot lock. */
  readonly cdp: CDPSession;
  /** Whether renders on this page may reuse what earlier renders fetched (SHOTFLEET_ASSET_CACHE). */
  readonly assetCache: boolean;
  /**
   * Runs a render on the page: `work` under the render's request rules, with a fresh record of where its main frame
   * navigates. The rules are dropped when the work settles or `signal` aborts, whichever comes first: the page of an
   * abandoned render may be handed on while the render's last call is still out, and its end must not drop the
   * rules of the next render.
   */
  runRender<T>(rules: RequestRules, signal: AbortSignal, work: () => Promise<T>): Promise<T>;
  /** Sets the page's emulation; only settings that differ from the page's current ones are sent (slot-emulation.ts). */
  emulate(wanted: Partial<Emulation>): Promise<void>;
  /**
   * What this render's main-frame navigation met: hosts the URL policy refused on its chain, a network failure.
   * Asked once the navigation failed: it first lets the page's document request report its end (page.goto can
   * reject a moment before Chromium's loadingFailed event arrives), for at most a second.
   */
  navigationOutcome(): Promise<NavigationOutcome>;
  /** Rejects with a PageCrashedError the moment the page crashes: a render races its steps against it. */
  gone: Promise<never>;
  /** The page's state is unknown (a deadline passed mid-render, a protocol error): destroyed when given back. */
  markBroken(): void;
  /** Whether the page's renderer or its whole browser died: the render may be tried again on another page. */
  lost(): boolean;
  /** Neither lost nor marked broken: a render may start on it. */
  usable(): boolean;
  /**
   * Whether the page's renderer answers: a round trip to it, raced against its crash report. When many renderers
   * die at once (an OOM kill, a killed process group), Chromium reports each death a little apart, and an idle
   * page can look healthy until its own report arrives.
   */
  answers(timeoutMs?: number): Promise<boolean>;
}

export interface NavigationOutcome {
  refusedHosts: string[];
  /** Chromium's net error for the main frame's document request (e.g. net::ERR_CONNECTION_REFUSED). */
  failure?: string;
}

/**
 * A warm page in a browser context of its own. The context is what keeps concurrent renders apart
 * (cookies, storage and cache are per context); between renders the pool wipes it through CDP
 * (see reset-slot.ts), which is far cheaper than a new context and window per request.
 * The pool and the sessions own the rest of it; a render sees only RenderPage.
 */
export interface PageSlot extends RenderPage {
  browser: BrowserHandle;
  context: BrowserContext;
  proxy: PolicyProxy | null;
  emulation: EmulationState;
  /** http(s) origins the page touched since the last reset: their storage is cleared. */
  origins: Set<string>;
  /** Origins of documents loaded in the main frame and in subframes since the last reset: third-party storage is keyed by both. */
  documentOrigins: { top: Set<string>; frames: Set<string> };
  /** The page can no longer be trusted (markBroken()): destroy it. */
  readonly broken: boolean;
  /** Set when the page's renderer crashed or was killed, or its target went away: every call on it fails or hangs. */
  crashed: boolean;
  /** A confidential render used the page since the last reset: its context's HTTP cache goes with the wipe. */
  cacheToDrop: boolean;
}

let nextSlotId = 1;

export interface SlotDeps {
  policy: UrlPolicy;
  /** SHOTFLEET_ASSET_CACHE, and where each response's source is counted. */
  assetCache: { on: boolean; count(source: CacheSource): void };
  startProxy: () => Promise<PolicyProxy>;
  log: Logger;
}

export async function openSlot(browser: BrowserHandle, deps: SlotDeps): Promise<PageSlot> {
  const proxy = deps.policy.active ? await deps.startProxy() : null;
  let context: BrowserContext | null = null;
  try {
    context = await browser.launched.browser.createBrowserContext(proxy ? { proxyServer: proxy.proxyServer, proxyBypassList: ['<-loopback>'] } : {});
    // A window, not a tab: with 2+ plain tabs, capturing a background one stalled ~4 s, with 4 it could hang until the protocol timed out.
    const page = await context.newPage({ type: 'window', windowBounds: defaultWindow });
    const cdp = await page.createCDPSession();
    let rules: RequestRules | null = null;
    let navigation = newNavigation();
    let userAgent: Promise<string> | undefined;
    let broken = false;
    const slot: PageSlot = {
      id: nextSlotId++,
      browser,
      context,
      page,
      cdp,
      assetCache: deps.assetCache.on,
      proxy,
      emulation: createEmulationState({
        page,
        cdp,
        browserContextId: context.id,
        browserUserAgent: () => (userAgent ??= page.browser().userAgent()),
      }),
      origins: new Set(),
      documentOrigins: { top: new Set(), frames: new Set() },
      get broken() {
        return broken;
      },
      crashed: false,
      gone: new Promise<never>(() => undefined),
      cacheToDrop: false,
      async runRender(next, signal, work) {
        signal.throwIfAborted();
        rules = next;
        // Set before the render fetches anything; a render that fails halfway is dropped all the same.
        if (next.confidential && deps.assetCache.on) slot.cacheToDrop = true;
        navigation = newNavigation();
        proxy?.takeRefusals();
        const end = () => {
          if (rules === next) rules = null;
        };
        signal.addEventListener('abort', end, { once: true });
        try {
          return await work();
        } finally {
          signal.removeEventListener('abort', end);
          end();
        }
      },
      emulate: (wanted) => slot.emulation.set(wanted),
      async navigationOutcome() {
        await documentRequestsEnded(navigation, 1000);
        // Only a refusal on the page's own navigation chain counts: a refused image is not why a page failed.
        const byProxy = (proxy?.takeRefusals() ?? []).filter((host) => navigation.hosts.has(host));
        return { refusedHosts: [...navigation.refused, ...byProxy], failure: navigation.failure };
      },
      markBroken() {
        broken = true;
      },
      lost: () => slot.crashed || browser.dead || !browser.launched.browser.connected,
      usable: () => !broken && !slot.lost(),
      answers: (timeoutMs) => answers(slot, timeoutMs),
    };
    slot.gone = watchForCrash(slot);
    await prepareGuards(slot, deps, { rules: () => rules, navigation: () => navigation });
    return slot;
  } catch (err) {
    await context?.close().catch(() => undefined);
    await proxy?.close();
    throw err;
  }
}

export async function closeSlot(slot: PageSlot): Promise<void> {
  slot.markBroken();
  const closing = slot.browser.dead ? Promise.resolve() : slot.context.close().catch(() => undefined);
  // A page stuck in `while(true){}` still closes: the browser process kills its renderer.
  await withTimeout(closing, 5000, () => undefined);
  await slot.proxy?.close();
}

/** A page whose renderer died: the render on it is tried again on another page (render-service.ts). */
class PageCrashedError extends Error {
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
      slot.markBroken();
      reject(new PageCrashedError(why));
    };
    slot.page.once('error', (err) => fail(err instanceof Error ? err.message : String(err)));
    slot.page.once('close', () => fail('its target closed'));
  });
  gone.catch(() => undefined);
  return gone;
}

async function answers(slot: PageSlot, timeoutMs = 2000): Promise<boolean> {
  if (slot.crashed || slot.broken || slot.browser.dead) return false;
  const probe = slot.cdp.send('Runtime.evaluate', { expression: '0' }).then(
    () => true,
    () => false,
  );
  const verdict = await withTimeout(Promise.race([probe, slot.gone.catch(() => false)]), timeoutMs, () => false);
  return verdict && !slot.crashed;
}

/** Set once per page: dialogs dismissed, popups closed, downloads refused, every request vetted. */
async function prepareGuards(slot: PageSlot, deps: SlotDeps, render: RenderInProgress): Promise<void> {
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
  page.on('request', (request) => handleRequest(slot, deps.policy, render, request));
  page.on('requestfailed', (request) => {
    if (!isMainNavigation(slot, request)) return;
    const navigation = render.navigation();
    navigation.failure = request.failure()?.errorText ?? navigation.failure;
    documentRequestEnded(navigation, request);
  });
  page.on('requestfinished', (request) => {
    if (isMainNavigation(slot, request)) documentRequestEnded(render.navigation(), request);
  });
  countResponses(page, deps.assetCache.count);
  await Promise.all([
    // With the asset cache off, each render turns the HTTP cache off through its emulation (httpCache).
    deps.assetCache.on ? keepDocumentsFresh(slot.cdp) : undefined,
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
 * the node per request, so a render switches it on (emulation `interception`) only when it needs it
 * (blockResourceTypes, blockAds, headers and authenticate, which go to one origin only).
 */
function handleRequest(slot: PageSlot, policy: UrlPolicy, render: RenderInProgress, request: HTTPRequest): void {
  const url = request.url();
  const verdict = policy.quickCheck(url);
  const mainNavigation = isMainNavigation(slot, request);
  const navigation = render.navigation();
  const rules = render.rules();
  if (mainNavigation) {
    navigation.hosts.add(hostOf(url));
    navigation.inFlight.add(request);
  }
  const intercepted = slot.emulation.current().interception && !request.isInterceptResolutionHandled();
  if (!verdict.ok) {
    if (mainNavigation) navigation.refused.push(hostOf(url));
    rules?.onRefused(url, verdict.reason);
    if (intercepted) void request.abort('accessdenied').catch(() => undefined);
    return;
  }
  if (intercepted && (rules?.blockResourceTypes.has(request.resourceType()) || rules?.blocks?.(request))) {
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
  const extra = rules?.extraHeaders?.(url);
  void request.continue(extra ? { headers: { ...request.headers(), ...extra } } : undefined).catch(() => undefined);
}

function isMainNavigation(slot: PageSlot, request: HTTPRequest): boolean {
  return request.isNavigationRequest() && request.frame() === slot.page.mainFrame();
}

/** The render in progress, as the request handlers see it. */
interface RenderInProgress {
  rules(): RequestRules | null;
  navigation(): Navigation;
}

/** Hosts the main frame navigated to (page and redirects) in the current render, those the policy refused, and a failure. */
interface Navigation {
  hosts: Set<string>;
  refused: string[];
  failure?: string;
  /** The main frame's document requests not yet finished or failed, and who waits for them to end. */
  inFlight: Set<HTTPRequest>;
  waiters: (() => void)[];
}

const newNavigation = (): Navigation => ({ hosts: new Set(), refused: [], inFlight: new Set(), waiters: [] });

function documentRequestEnded(navigation: Navigation, request: HTTPRequest): void {
  navigation.inFlight.delete(request);
  if (navigation.inFlight.size === 0) for (const wake of navigation.waiters.splice(0)) wake();
}

function documentRequestsEnded(navigation: Navigation, boundMs: number): Promise<void> {
  if (navigation.inFlight.size === 0) return Promise.resolve();
  return withTimeout(new Promise<void>((resolve) => navigation.waiters.push(resolve)), boundMs, () => undefined);
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}
