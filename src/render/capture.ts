import { sleep } from '../async/timeout.js';
import type { Logger } from '../log/logger.js';
import { ShotError } from '../errors/shot-error.js';
import type { RenderPage, RequestRules } from '../render-pool/page-slot.js';
import type { RenderOptions } from '../request/options.js';
import { navigate } from './navigate.js';
import { allowBestEffort, waitBudget, type RenderReport } from './best-effort.js';
import { wantedEmulation } from './emulation.js';
import { hideBlockedElements, runScripts, scrollThroughPage, waitForFonts } from './page-steps.js';
import { needsInterception, requestRules } from './request-rules.js';
import { checkTargetStatus, watchDocumentStatus } from './target-status.js';
import type { AdBlocker } from './ad-blocking.js';
import { consentBannerCss } from './consent-banners.js';
import { elementBox } from './element-box.js';
import { fitToBudget, type Box, type PixelBudget } from '../request/pixel-budget.js';

export interface CaptureResult {
  image: Buffer;
  contentType: string;
  truncated: boolean;
}

export interface CaptureContext {
  /** Absolute time (ms since epoch) by which the render must be done: what puppeteer's own timeouts are set from. */
  deadlineAt: number;
  /** Aborts when the request is abandoned: its client left or its deadline passed. */
  signal: AbortSignal;
  maxPageHeight: number;
  /** SHOTFLEET_MAX_PIXELS: what a region known only during the render is cut to fit. */
  budget: PixelBudget;
  log: Logger;
  /** What the render learnt along the way, read by the caller even when the render fails. */
  report?: RenderReport;
  adBlocker?: AdBlocker | null;
}

type Clip = { x: number; y: number; width: number; height: number; scale: number };

/** CSS that stops animations and transitions at their end state, for stable captures. */
const freezeMotionCss = '*,*::before,*::after{animation:none!important;transition:none!important;caret-color:transparent!important}';

/** One render in progress: what its steps share. */
interface Render {
  slot: RenderPage;
  options: RenderOptions;
  ctx: CaptureContext;
  rules: RequestRules;
  report: RenderReport;
  waits: ReturnType<typeof waitBudget>;
  /** Ad and tracker URLs refused during the load: the frames and images that showed them are hidden. */
  blockedAds: Set<string>;
}

type Step = (render: Render) => Promise<void>;

/**
 * A render, step by step in this order, all under the request's signal (its client leaving, its deadline passing):
 * once it aborts no further step starts, and the waits of the step under way end with it. Each step does one thing,
 * and one a request does not ask for returns at once.
 */
const steps: Step[] = [
  setEmulation,
  loadPage,
  failOnTargetStatus,
  checkSelectors,
  waitForSelector,
  runPageScripts,
  scrollPage,
  hideBlockedAds,
  addStyles,
  waitDelay,
  // Web fonts last: scripts, scrolling and injected CSS can each start a font load.
  waitForWebFonts,
];

/** Drives one render on a page, under its request rules from first step to last: its steps, then the capture. */
export async function capture(slot: RenderPage, options: RenderOptions, ctx: CaptureContext): Promise<CaptureResult> {
  const blockedAds = new Set<string>();
  const rules = requestRules(options, ctx.log, options.blockAds ? (ctx.adBlocker ?? null) : null, blockedAds);
  const render: Render = { slot, options, ctx, rules, report: ctx.report ?? { bestEffort: false }, waits: waitBudget(options, ctx), blockedAds };
  return slot.runRender(rules, ctx.signal, async () => {
    for (const step of steps) {
      ctx.signal.throwIfAborted();
      await step(render);
    }
    ctx.signal.throwIfAborted();
    return takeScreenshot(render);
  });
}

/** Every emulation setting, before the page loads. */
async function setEmulation({ slot, options, rules }: Render): Promise<void> {
  // A confidential render neither takes what anonymous renders cached (its credentials may change the answers) nor
  // leaves what it fetched (the slot drops the cache after it).
  await slot.emulate(wantedEmulation(options, needsInterception(rules), slot.assetCache && !rules.confidential));
}

async function loadPage({ slot, options, ctx, report, waits }: Render): Promise<void> {
  const stopWatching = watchDocumentStatus(slot.page, (status) => (report.targetStatus = status));
  try {
    await allowBestEffort(options, report, ctx.signal, () => navigate(slot, options, waits.remaining, ctx.signal));
  } finally {
    stopWatching();
  }
}

async function failOnTargetStatus({ options, report }: Render): Promise<void> {
  checkTargetStatus(options.failOnHttpStatus, report.targetStatus);
}

async function waitForSelector({ slot, options, ctx, report, waits }: Render): Promise<void> {
  const selector = options.waitForSelector;
  if (!selector) return;
  const { signal } = ctx;
  await allowBestEffort(options, report, signal, () =>
    slot.page.waitForSelector(selector, { timeout: waits.remaining(), signal }).catch((err) => {
      signal.throwIfAborted();
      throw new ShotError('timeout', `waitForSelector "${selector}" did not appear before the deadline`, { cause: String(err?.message ?? err) });
    }),
  );
}

async function runPageScripts({ slot, options, ctx }: Render): Promise<void> {
  if (options.scripts !== undefined) await runScripts(slot, options.scripts, ctx.signal);
}

async function scrollPage({ slot, options, ctx, waits }: Render): Promise<void> {
  if (options.scrollPage) await scrollThroughPage(slot, ctx.maxPageHeight, waits.scrollBudget(), ctx.signal);
}

async function hideBlockedAds({ slot, blockedAds }: Render): Promise<void> {
  if (blockedAds.size > 0) await hideBlockedElements(slot, blockedAds);
}

async function addStyles({ slot, options }: Render): Promise<void> {
  const styles = [
    options.reducedMotion ? freezeMotionCss : '',
    options.hideSelectors?.length ? `${options.hideSelectors.join(',')}{visibility:hidden!important}` : '',
    options.blockCookieBanners ? consentBannerCss() : '',
    options.css ?? '',
  ].filter(Boolean);
  if (styles.length > 0) await slot.page.addStyleTag({ content: styles.join('\n') });
}

async function waitDelay({ options, ctx }: Render): Promise<void> {
  if (options.delay > 0) await sleep(Math.min(options.delay, Math.max(1, ctx.deadlineAt - Date.now())), ctx.signal);
}

async function waitForWebFonts({ slot, options, ctx, report, waits }: Render): Promise<void> {
  if (await waitForFonts(slot, waits.remaining(), ctx.signal)) return;
  if (!options.bestEffort) throw new ShotError('timeout', "the page's web fonts did not load before the deadline; raise timeout or use bestEffort");
  report.bestEffort = true;
}

async function takeScreenshot({ slot, options, ctx }: Render): Promise<CaptureResult> {
  const { clip, truncated } = await captureRegion(slot, options, ctx);
  const shot = await slot.cdp.send('Page.captureScreenshot', {
    format: options.format,
    ...(options.format !== 'png' ? { quality: options.quality ?? 80 } : {}),
    ...(clip ? { clip, captureBeyondViewport: true } : {}),
    optimizeForSpeed: options.optimizeForSpeed,
    fromSurface: true,
  });
  return { image: Buffer.from(shot.data, 'base64'), contentType: `image/${options.format}`, truncated };
}

/**
 * Only a CSS parser knows which selectors are valid: ask the loaded page's (before, a blank page may still
 * be navigating), so a typo is a 400 rather than a wait until the deadline (waitForSelector) or a silently
 * ignored rule.
 */
async function checkSelectors({ slot, options }: Render): Promise<void> {
  const fields: [string, string][] = [
    ...(options.selector ? [['selector', options.selector] as [string, string]] : []),
    ...(options.waitForSelector ? [['waitForSelector', options.waitForSelector] as [string, string]] : []),
    ...(options.hideSelectors ?? []).map((sel, i) => [`hideSelectors.${i}`, sel] as [string, string]),
  ];
  if (fields.length === 0) return;
  const invalid = await slot.page.evaluate((list: [string, string][]) => {
    const probe = document.createDocumentFragment();
    for (const [field, selector] of list) {
      try {
        probe.querySelector(selector);
      } catch {
        return [field, selector];
      }
    }
    return null;
  }, fields);
  if (invalid) {
    throw new ShotError('invalid_request', `${invalid[0]}: "${invalid[1]}" is not a valid CSS selector`, {
      fields: [{ field: invalid[0], message: 'not a valid CSS selector' }],
    });
  }
}

/** The region to capture in CSS pixels of the document; undefined means "the viewport". */
async function captureRegion(slot: RenderPage, options: RenderOptions, ctx: CaptureContext): Promise<{ clip?: Clip; truncated: boolean }> {
  if (options.clip) return { clip: { ...options.clip, scale: 1 }, truncated: false };
  if (!options.selector && !options.fullPage) return { truncated: false };
  // Sizes known only now: cut to fit the page-height cap, the pixel budget and the format (pixel-budget.ts).
  const scale = slot.page.viewport()?.deviceScaleFactor ?? 1;
  let whole: Box;
  if (options.selector) {
    whole = await elementBox(slot.cdp, options.selector);
  } else {
    const metrics = await slot.cdp.send('Page.getLayoutMetrics');
    const width = slot.page.viewport()?.width ?? metrics.cssLayoutViewport.clientWidth;
    whole = { x: 0, y: 0, width, height: Math.max(1, Math.ceil(metrics.cssContentSize.height)) };
  }
  const { box, truncated } = fitToBudget(whole, scale, options.format, ctx.budget, ctx.maxPageHeight);
  return { clip: { ...box, scale: 1 }, truncated };
}
