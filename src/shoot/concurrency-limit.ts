import { createWaitQueue } from '../async/wait-queue.js';

/**
 * How many requests may be in flight, adapted AIMD-style: every 503 cuts the limit by 10 %, every
 * success the fleet accepts grows it by 1/limit (about one per round of successes), never above the
 * --concurrency asked for. A batch started with more concurrency than the fleet has room for settles
 * near its capacity instead of having most of its requests shed over and over.
 */
export interface ConcurrencyLimit {
  /** Resolves true with a permit, or false once `signal` aborts. */
  acquire(signal: AbortSignal): Promise<boolean>;
  release(): void;
  shed(): void;
  succeeded(): void;
  readonly limit: number;
}

export function createConcurrencyLimit(max: number, { decrease = 0.9 } = {}): ConcurrencyLimit {
  let limit = max;
  let inFlight = 0;
  const waiters = createWaitQueue();
  const take = () => {
    inFlight++;
    return true;
  };
  const wakeUp = () => {
    while (inFlight < Math.floor(limit) && waiters.wakeNext()) {}
  };

  return {
    acquire(signal) {
      if (signal.aborted) return Promise.resolve(false);
      if (inFlight < Math.floor(limit) && waiters.length === 0) return Promise.resolve(take());
      return waiters.wait(signal, take).catch(() => false);
    },
    release() {
      inFlight--;
      wakeUp();
    },
    shed() {
      limit = Math.max(1, limit * decrease);
    },
    succeeded() {
      limit = Math.min(max, limit + 1 / limit);
      wakeUp();
    },
    get limit() {
      return limit;
    },
  };
}
