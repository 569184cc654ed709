import { TimeoutError, type HTTPRequest, type Page } from 'puppeteer-core';
import { abortable } from '../async/abortable.js';
import { withTimeout } from '../async/timeout.js';
import { ShotError } from '../errors/shot-error.js';
import type { RenderPage } from '../render-pool/page-slot.js';
import type { RenderOptions } from '../request/options.js';

/**
 * Loads the page (url or html) and waits for the asked readiness. Maps what can go wrong to the
 * README's errors: a page or redirect the URL policy refused → 403, an unreachable target → 502,
 * a load that does not finish in time → 504. Waiting for the load ends when `signal` aborts, with its reason.
 */
export async function navigate(slot: RenderPage, options: RenderOptions, remaining: () => number, signal: AbortSignal): Promise<void> {
  const { page } = slot;
  if (options.cookies?.length) {
    await page.setCookie(...options.cookies.map((c) => (c.domain ? { ...c, path: c.path ?? '/' } : { ...c, url: options.url }))).catch((err: unknown) => {
      // Chromium is the judge of a cookie (domain, path, public suffixes); its refusal is a bad request.
      throw new ShotError('invalid_request', 'the browser refused a cookie: check its domain (a host name) and path (starting with /)', {
        field: 'cookies',
        reason: String((err as Error)?.message ?? err).split('\n')[0],
      });
    });
  }
  try {
    if (options.html !== undefined) {
      const networkIdle = options.waitUntil.startsWith('networkidle');
      // Watching starts before the content is set so requests made while it loads are counted.
      const quiet = networkIdle ? waitForQuietNetwork(page, options.waitUntil === 'networkidle0' ? 0 : 2, remaining(), signal) : null;
      quiet?.catch(() => undefined);
      await abortable(page.setContent(options.html, { waitUntil: networkIdle ? 'load' : (options.waitUntil as 'load'), timeout: remaining() }), signal);
      await quiet;
      return;
    }
    const response = await abortable(page.goto(options.url!, { waitUntil: options.waitUntil, timeout: remaining() }), signal);
    if (response?.headers()['x-shotfleet-refused']) throw refused(options.url!, [new URL(response.url()).hostname]);
    // The policy proxy's own 502 (the page or a redirect names a host that does not resolve or answer): the site
    // was never reached, so there is nothing of it to capture.
    const unreachable = response?.headers()['x-shotfleet-unreachable'];
    if (unreachable) throw new ShotError('navigation_failed', `could not load the page: ${unreachable} at ${response!.url()}`, { url: options.url });
  } catch (err) {
    // An abandoned request's load is not judged: the page is not asked what became of it.
    signal.throwIfAborted();
    if (err instanceof ShotError) throw err;
    if (err instanceof TimeoutError) {
      throw new ShotError('timeout', `the page did not reach "${options.waitUntil}" before the deadline; raise timeout or use waitUntil "domcontentloaded"`);
    }
    const outcome = await slot.navigationOutcome();
    if (outcome.refusedHosts.length > 0) throw refused(options.url!, outcome.refusedHosts);
    // Chromium's net error for the page's own document, as the slot saw it fail; else Page.navigate's own errorText,
    // which is all there is when the document failed before puppeteer saw its request (with interception on).
    const failure = outcome.failure ?? navigateErrorText(err);
    if (failure) {
      throw new ShotError('navigation_failed', `could not load the page: ${failure} at ${options.url ?? 'the page'}`, { url: options.url });
    }
    throw err;
  }
}

/**
 * networkidle for html input, counted from this render's own requests: puppeteer's page-wide
 * in-flight count can keep requests of an earlier render on the reused page and never reach 0.
 * Chrome's own rule: at most `allowed` requests in flight for 500 ms.
 */
function waitForQuietNetwork(page: Page, allowed: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const inFlight = new Set<HTTPRequest>();
  let quietTimer: NodeJS.Timeout | undefined;
  let quiet!: () => void;
  const wentQuiet = new Promise<void>((resolve) => (quiet = resolve));
  const check = () => {
    clearTimeout(quietTimer);
    if (inFlight.size <= allowed) quietTimer = setTimeout(quiet, 500);
  };
  const started = (r: HTTPRequest) => {
    inFlight.add(r);
    check();
  };
  const ended = (r: HTTPRequest) => {
    inFlight.delete(r);
    check();
  };
  page.on('request', started).on('requestfinished', ended).on('requestfailed', ended);
  check();
  const notIdle = () => {
    throw new TimeoutError('network did not become idle');
  };
  return withTimeout(wentQuiet, timeoutMs, notIdle, signal).finally(() => {
    clearTimeout(quietTimer);
    page.off('request', started).off('requestfinished', ended).off('requestfailed', ended);
  });
}

function refused(url: string, hosts: string[]): ShotError {
  return new ShotError('url_forbidden', 'the URL policy refused the page or one of its redirects', { url, refusedHosts: hosts });
}

/**
 * page.goto reports Page.navigate's errorText as an Error whose message is `${errorText} at ${url}` and gives it no
 * field of its own: these are the texts Chromium puts there for a navigation that could not be made.
 */
function navigateErrorText(err: unknown): string | undefined {
  const message = err instanceof Error ? err.message : '';
  return /^(net::ERR_[A-Z_]+|Cannot navigate to invalid URL)\b/.exec(message)?.[1];
}
