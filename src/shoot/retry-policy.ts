/**
 * How long to wait before trying again. A 503 says when to come back (Retry-After); we wait that long
 * plus some jitter, so the clients a node shed together do not return together. Other transient failures
 * back off exponentially, capped, with "equal jitter" (half fixed, half random).
 */
export interface RetryPolicy {
  /** Retries one item may make before it is recorded as failed. */
  maxRetriesPerItem: number;
  /** Retries the whole batch may make; once spent, transient failures become final. */
  batchRetryBudget: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  /** Longest Retry-After honoured as given; a longer one is waited only this long. */
  maxRetryAfterMs: number;
}

export const defaultRetryPolicy = (items: number): RetryPolicy => ({
  maxRetriesPerItem: 8,
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
