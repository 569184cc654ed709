import { describe, expect, it } from 'vitest';
import { ShotError } from '../src/errors/shot-error.js';
import { createLogger } from '../src/log/logger.js';
import { capture } from '../src/render/capture.js';
import type { RenderReport } from '../src/render/best-effort.js';
import type { RenderPage } from '../src/render-pool/page-slot.js';
import { createOptionsSchema, parseRenderOptions } from '../src/request/options.js';

/**
 * A capture on a stand-in page whose waits never end unless their signal aborts, as puppeteer's waitForSelector does:
 * an abandoned request's capture stops at once, and starts nothing after the step it was in.
 */
function stalledPage(loads: boolean) {
  const calls: string[] = [];
  const stalled = (name: string) => () => {
    calls.push(name);
    return new Promise<never>(() => undefined);
  };
  const answered = (name: string) => async () => {
    calls.push(name);
    return null;
  };
  const page = {
    on: () => page,
    off: () => page,
    goto: loads ? answered('goto') : stalled('goto'),
    setContent: answered('setContent'),
    waitForSelector: (_selector: string, { signal }: { signal: AbortSignal }) => {
      calls.push('waitForSelector');
      return new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    },
    evaluate: answered('evaluate'),
  };
  const slot = {
    page,
    cdp: { send: (method: string) => stalled(method)() },
    assetCache: false,
    runRender: (_rules: unknown, _signal: AbortSignal, work: () => Promise<unknown>) => work(),
    emulate: async () => undefined,
    navigationOutcome: async () => ({ refusedHosts: [] }),
  } as unknown as RenderPage;
  return { slot, calls };
}

const schema = createOptionsSchema({ maxViewport: 4096, maxTimeoutMs: 60_000, defaultTimeoutMs: 30_000, maxPixels: 100_000_000 });

function start(input: Record<string, unknown>, signal: AbortSignal, loads = false) {
  const { slot, calls } = stalledPage(loads);
  const report: RenderReport = { bestEffort: false };
  const options = parseRenderOptions(schema, { timeout: 30_000, ...input });
  const ctx = { deadlineAt: Date.now() + 30_000, signal, maxPageHeight: 16_384, budget: { maxPixels: 100_000_000 }, log: createLogger('silent'), report };
  const captured = capture(slot, options, ctx);
  captured.catch(() => undefined);
  return { captured, calls, report };
}

/** Aborts `stop` with `reason` once the capture has called `call`, and returns how long the capture took to stop. */
async function abortDuring(run: ReturnType<typeof start>, stop: AbortController, call: string, reason: Error) {
  while (!run.calls.includes(call)) await new Promise((r) => setTimeout(r, 5));
  const abortedAt = Date.now();
  stop.abort(reason);
  await expect(run.captured).rejects.toBe(reason);
  return Date.now() - abortedAt;
}

describe('an abandoned capture', () => {
  it("stops waiting for its page's load at the abort, and starts no later step", async () => {
    const stop = new AbortController();
    const run = start({ url: 'http://site.test/', waitForSelector: '#late' }, stop.signal);
    expect(await abortDuring(run, stop, 'goto', new Error('client left'))).toBeLessThan(100);
    await new Promise((r) => setTimeout(r, 50));
    expect(run.calls).toEqual(['goto']);
  });

  it('stops its delay at the abort instead of sleeping it out, and never captures', async () => {
    const stop = new AbortController();
    const run = start({ html: '<p>hello</p>', delay: 10_000 }, stop.signal);
    await new Promise((r) => setTimeout(r, 20));
    expect(run.calls).toEqual(['setContent']);
    expect(await abortDuring(run, stop, 'setContent', new Error('client left'))).toBeLessThan(100);
    await new Promise((r) => setTimeout(r, 50));
    expect(run.calls).not.toContain('Page.captureScreenshot');
  });

  it("ends a bestEffort wait with the deadline's 504, not with a best-effort capture", async () => {
    const stop = new AbortController();
    const run = start({ url: 'http://site.test/', bestEffort: true, waitForSelector: '#late' }, stop.signal, true);
    const deadline = new ShotError('timeout', 'the render did not finish before its deadline');
    expect(await abortDuring(run, stop, 'waitForSelector', deadline)).toBeLessThan(100);
    await new Promise((r) => setTimeout(r, 50));
    expect(run.report.bestEffort).toBe(false);
    expect(run.calls).toEqual(['goto', 'evaluate', 'waitForSelector']);
  });
});
