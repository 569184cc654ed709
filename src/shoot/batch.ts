import type { AdaptiveThrottle } from './adaptive-throttle.js';
import type { ShotItem } from './input.js';
import type { ItemError, ManifestRecord, ManifestWriter } from './manifest.js';
import { backoffDelay, createRetryBudget, retryAfterDelay, type RetryPolicy } from './retry-policy.js';
import { createConcurrencyLimit } from './concurrency-limit.js';
import { sendAttempt, type AttemptContext, type AttemptOutcome } from './send-attempt.js';

export interface BatchSettings {
  attempt: Omit<AttemptContext, 'signal'>;
  concurrency: number;
  retry: RetryPolicy;
  throttle: AdaptiveThrottle;
  random?: () => number;
}

/** Progress callbacks; every one is optional. */
export interface BatchObserver {
  /** The item waits before its next attempt: a retry, or the throttle held it back. */
  waiting?(item: ShotItem, why: ItemError | 'throttled', delayMs: number): void;
  resumed?(item: ShotItem): void;
  /** Its record is in the manifest. */
  finished?(record: ManifestRecord): void;
}

export interface BatchStats {
  ok: number;
  failed: number;
  retries: number;
  /** 503 answers received. */
  shed: number;
  /** 429 answers received: our key over its own limit on a node. */
  rateLimited: number;
  /** Attempts the adaptive throttle held back. */
  throttled: number;
  /** Items left undone because the batch was interrupted. */
  unfinished: number;
}

/**
 * Shoots every item with at most `concurrency` in progress. An item keeps its slot while it waits to
 * retry, so a shedding fleet sees fewer requests from us, not the same number from other items; and
 * requests in flight follow an adaptive limit that backs off on 503s (see concurrency-limit.ts).
 */
export async function runBatch(
  items: ShotItem[],
  settings: BatchSettings,
  manifest: ManifestWriter,
  observer: BatchObserver,
  signal: AbortSignal,
): Promise<BatchStats> {
  const stats: BatchStats = { ok: 0, failed: 0, retries: 0, shed: 0, rateLimited: 0, throttled: 0, unfinished: 0 };
  const budget = createRetryBudget(settings.retry.batchRetryBudget);
  const random = settings.random ?? Math.random;
  const ctx: AttemptContext = { ...settings.attempt, signal };
  const limit = createConcurrencyLimit(settings.concurrency);

  const wait = async (item: ShotItem, why: ItemError | 'throttled', delayMs: number) => {
    observer.waiting?.(item, why, delayMs);
    const slept = await sleep(delayMs, signal);
    observer.resumed?.(item);
    return slept;
  };

  const shoot = async (item: ShotItem): Promise<ManifestRecord | undefined> => {
    let attempts = 0;
    let retries = 0;
    let shedRetries = 0;
    let heldBackInARow = 0;
    let lastError: ItemError | undefined;
    const failed = (error: ItemError): ManifestRecord => ({ line: item.line, url: item.url, source: item.url, status: 'failed', attempts, error });
    for (;;) {
      if (!(await limit.acquire(signal))) return undefined;
      let outcome: AttemptOutcome;
      const heldBack = !settings.throttle.tryAcquire();
      if (heldBack) {
        stats.throttled++;
        outcome = { kind: 'retry', error: { code: 'throttled', message: 'held back: the fleet turned away most recent requests (adaptive throttle)' } };
      } else {
        attempts++;
        outcome = await sendAttempt(item, ctx);
        if (outcome.kind !== 'aborted') settings.throttle.record(outcome.kind !== 'retry');
        if (outcome.kind === 'ok') limit.succeeded();
        if (outcome.kind === 'retry' && isAskingForTime(outcome.error.status)) {
          if (outcome.error.status === 503) stats.shed++;
          else stats.rateLimited++;
          limit.shed();
        }
      }
      limit.release();
      if (outcome.kind === 'aborted') return undefined;
      if (outcome.kind === 'ok') return { line: item.line, url: item.url, source: item.url, status: 'ok', ...outcome.result, attempts };
      if (outcome.kind === 'failed') return failed(outcome.error);

      if (heldBack) {
        // Held back while the fleet still accepts work is only pacing. Held back while it accepts
        // nothing counts as a failed try, so a dead fleet fails the batch in bounded time.
        heldBackInARow++;
        if (settings.throttle.fleetAccepting()) {
          const delay = backoffDelay(Math.min(heldBackInARow, 4), settings.retry, random);
          if (!(await wait(item, 'throttled', delay))) return undefined;
          continue;
        }
      } else {
        heldBackInARow = 0;
        lastError = outcome.error;
      }
      // Only retries actually sent spend the batch's budget.
      const error = heldBack && lastError ? { ...lastError, message: `${lastError.message}; then held back by the adaptive throttle` } : outcome.error;
      const shed = !heldBack && isAskingForTime(outcome.error.status);
      if (shed ? shedRetries >= settings.retry.maxShedRetriesPerItem : retries >= settings.retry.maxRetriesPerItem) {
        return failed({ ...error, message: `${error.message}; gave up after ${attempts} tries (${shed ? '--shed-retries' : '--retries'})` });
      }
      if (!heldBack && !budget.take()) {
        return failed({ ...error, message: `${error.message}; the batch's retry budget is spent (--retry-budget)` });
      }
      if (shed) shedRetries++;
      else retries++;
      if (!heldBack) stats.retries++;
      const delay =
        outcome.retryAfterMs === undefined
          ? backoffDelay(shed ? shedRetries : retries, settings.retry, random)
          : retryAfterDelay(outcome.retryAfterMs, settings.retry, random);
      if (!(await wait(item, heldBack ? 'throttled' : outcome.error, delay))) return undefined;
    }
  };

  let next = 0;
  const worker = async () => {
    while (!signal.aborted && next < items.length) {
      const record = await shoot(items[next++]);
      if (!record) continue;
      await manifest.append(record);
      stats[record.status === 'ok' ? 'ok' : 'failed']++;
      observer.finished?.(record);
    }
  };
  await Promise.all(Array.from({ length: Math.min(settings.concurrency, items.length) }, worker));
  stats.unfinished = items.length - stats.ok - stats.failed;
  return stats;
}

/** 503 (the node is busy) and 429 (our key is at its limit): both say when to come back, neither is a failure. */
const isAskingForTime = (status: number | undefined) => status === 503 || status === 429;

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (slept: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(slept);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
