import { abortable } from '../async/abortable.js';
import { sleep, withTimeout } from '../async/timeout.js';
import { ShotError } from '../errors/shot-error.js';
import type { RenderPage } from '../render-pool/page-slot.js';

/**
 * Waits for the page's web fonts (document.fonts.ready) for at most `budgetMs`. Layout is forced first: a font
 * is only requested once text using it is laid out, and until then fonts.ready reports nothing pending.
 * Returns false when the fonts were not ready in time.
 */
export async function waitForFonts(slot: RenderPage, budgetMs: number, signal: AbortSignal): Promise<boolean> {
  // Sent as a plain Runtime.evaluate, not page.evaluate: puppeteer's evaluate runs with a user gesture, which
  // would let the page open one popup (window.open, target=_blank) on every render.
  const ready = slot.cdp
    .send('Runtime.evaluate', {
      expression: 'void document.documentElement.offsetHeight; document.fonts.ready.then(() => true)',
      awaitPromise: true,
      userGesture: false,
      silent: true,
    })
    // A page that broke its own document.fonts is captured as it is.
    .then(
      () => true,
      () => true,
    );
  return withTimeout(ready, budgetMs, () => false, signal);
}

/**
 * Runs the client's script in the page's main world. The value of its last expression is awaited when it is a
 * promise; an exception (thrown or a rejected promise) is a 422 with its message. Waiting for it ends when `signal`
 * aborts.
 */
export async function runScripts(slot: RenderPage, source: string, signal: AbortSignal): Promise<void> {
  const evaluated = slot.cdp.send('Runtime.evaluate', { expression: source, awaitPromise: true, userGesture: true, silent: true }).catch((err: unknown) => {
    // The script navigated or reloaded the page: its promise went with the document it ran in.
    const reason = String((err as Error)?.message ?? err).split('\n')[0];
    throw new ShotError('script_failed', `scripts did not finish in the page (${reason}); a script must not navigate away`, { message: reason });
  });
  const result = await abortable(evaluated, signal);
  if (!result.exceptionDetails) return;
  const details = result.exceptionDetails;
  const thrown = details.exception?.description ?? (details.exception?.value !== undefined ? String(details.exception.value) : details.text);
  const message = (thrown ?? 'unknown error').split('\n')[0].slice(0, 500);
  throw new ShotError('script_failed', `scripts threw: ${message}; fix the script or leave it out`, {
    message,
    ...(details.lineNumber !== undefined ? { line: details.lineNumber + 1, column: details.columnNumber + 1 } : {}),
  });
}

/**
 * scrollPage: scrolls to the bottom one viewport at a time (the page may grow as content arrives; never past
 * `maxHeight`), giving IntersectionObserver callbacks and lazy images a frame at each step, then waits for the
 * images to load and decode, and scrolls back to the top. Stops early when `budgetMs` runs out: the capture
 * still happens, with what has loaded. Stops at once, rejecting with its reason, when `signal` aborts.
 */
export async function scrollThroughPage(slot: RenderPage, maxHeight: number, budgetMs: number, signal: AbortSignal): Promise<void> {
  const until = Date.now() + budgetMs;
  const { page } = slot;
  let y = 0;
  while (Date.now() < until) {
    signal.throwIfAborted();
    const view = await page.evaluate(async (to: number) => {
      window.scrollTo(0, to);
      await new Promise((done) => {
        requestAnimationFrame(() => requestAnimationFrame(done));
        setTimeout(done, 100); // no frames come while the window is hidden
      });
      return { step: window.innerHeight, height: document.documentElement.scrollHeight, at: window.scrollY };
    }, y);
    const bottom = Math.min(view.height, maxHeight);
    if (view.at + view.step >= bottom || view.step <= 0) break;
    y = view.at + view.step;
    // Time for lazy images to start and observers to react to what came into view.
    await sleep(Math.min(100, Math.max(0, until - Date.now())), signal);
  }
  const images = page
    .evaluate(() =>
      Promise.all([...document.images].map((img) => (img.complete && img.naturalWidth > 0 ? undefined : img.decode().catch(() => undefined)))).then(() => true),
    )
    .catch(() => true);
  await withTimeout(images, until - Date.now(), () => false, signal);
  await page.evaluate(async () => {
    window.scrollTo(0, 0);
    await new Promise((done) => {
      requestAnimationFrame(() => requestAnimationFrame(done));
      setTimeout(done, 100); // no frames come while the window is hidden
    });
  });
}

/**
 * Hides the frames, images and embeds whose source was a blocked ad: otherwise each leaves the browser's
 * "blocked" placeholder in the image where the ad would have been.
 */
export async function hideBlockedElements(slot: RenderPage, blockedUrls: ReadonlySet<string>): Promise<void> {
  await slot.page.evaluate(
    (urls: string[]) => {
      const blocked = new Set(urls);
      for (const el of document.querySelectorAll<HTMLElement>('iframe, frame, img, embed, object')) {
        const source = (el as HTMLIFrameElement).src || (el as HTMLObjectElement).data || '';
        if (blocked.has(source)) el.style.setProperty('visibility', 'hidden', 'important');
      }
    },
    [...blockedUrls],
  );
}
