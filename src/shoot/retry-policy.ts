/**
 * How long to wait before trying again. A 503 says when to come back (Retry-After); we wait that long
 * plus some jitter, so the clients a node shed together do not return together. Other transient failures
 * back off exponentially, capped, with "equal jitter" (half fixed, half random).
 */
export interface RetryPolicy {
  /** Retries one item may make after failures (502, 504, connection errors, timeouts). */
  maxRetriesPerItem: number;
  /**
   * 503s one item may wait out. Counted apart: a 503 is the fleet asking for time, not failing, and an
   * item that keeps losing the race for a slot of a busy fleet should not fail while its neighbours pass.
   */
  maxShedRetriesPerItem: number;
  /** Retries the whole batch may make; once spent, transient failures become final. */
  batchRetryBudget: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  /** Longest Retry-After honoured as given; a longer one is waited only this long. */
  maxRetryAfterMs: number;
}

export const defaultRetryPolicy = (items: number): RetryPolicy => ({
  maxRetriesPerItem: 4,
  maxShedRetriesPerItem: 20,
  batchRetryBudget: 20 + 3 * items,
  backoffBaseMs: 500,
  backoffCapMs: 15_000,
  maxRetryAfterMs: 120_000,
});

export function backoffDelay(retry: number, policy: Pick<RetryPolicy, 'backoffBaseMs' | 'backoffCapMs'>, random = Math.random): number {
  const ceiling = Math.min(policy.backoffCapMs, policy.backoffBaseMs * 2 ** Math.max(0, retry - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export function retryAfterDelay(retryAfterMs: number, policy: Pick<RetryPolicy, 'maxRetryAfterMs'>, random = Math.random): number {
  const wait = Math.min(retryAfterMs, policy.maxRetryAfterMs);
  return Math.round(wait + random() * Math.min(5_000, Math.max(250, wait / 2)));
}

/** Retry-After as whole seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The batch-wide retry allowance, shared by every worker. */
export interface RetryBudget {
  take(): boolean;
  readonly remaining: number;
}

export function createRetryBudget(total: number): RetryBudget {
  let remaining = total;
  return {
    take() {
      if (remaining <= 0) return false;
      remaining--;
      return true;
    },
    get remaining() {
      return remaining;
    },
  };
}
