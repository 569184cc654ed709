import { ShotError } from '../errors/shot-error.js';
import type { RenderOptions } from '../request/options.js';

/** What a render learnt along the way; the caller reads it even when the render fails. */
export interface RenderReport {
  /** HTTP status of the page's own document after redirects, when its navigation got a response. */
  targetStatus?: number;
  /** True when a wait (waitUntil, waitForSelector, fonts) was cut short and the page captured as it was. */
  bestEffort: boolean;
}

/**
 * How long the waits of a render may take. With bestEffort they end early enough to leave the capture a share
 * of the deadline (a quarter of the timeout, between 1 and 5 s); without it they may use all of it and a
 * miss is a 504. Scrolling (scrollPage) always leaves that share: it is best effort by nature.
 */
export function waitBudget(options: RenderOptions, ctx: { deadlineAt: number }) {
  const reserve = Math.min(5000, Math.max(1000, Math.round(options.timeout / 4)));
  const softEnd = ctx.deadlineAt - reserve;
  return {
    remaining: () => Math.max(1, (options.bestEffort ? softEnd : ctx.deadlineAt) - Date.now()),
    scrollBudget: () => Math.max(0, softEnd - Date.now()),
  };
}

/**
 * Runs a wait; with bestEffort its timeout is noted in the report instead of failing the render. A wait ended by the
 * request's signal (its client left, its deadline passed) ends the render all the same.
 */
export async function allowBestEffort(options: RenderOptions, report: RenderReport, signal: AbortSignal, wait: () => Promise<unknown>): Promise<void> {
  try {
    await wait();
  } catch (err) {
    if (options.bestEffort && !signal.aborted && err instanceof ShotError && err.code === 'timeout') {
      report.bestEffort = true;
      return;
    }
    throw err;
  }
}
