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
  const waiters: (() => void)[] = [];

  const wakeUp = () => {
    while (waiters.length > 0 && inFlight < Math.floor(limit)) {
      inFlight++;
      waiters.shift()!();
    }
  };

  return {
    acquire(signal) {
      if (signal.aborted) return Promise.resolve(false);
      if (inFlight < Math.floor(limit) && waiters.length === 0) {
        inFlight++;
        return Promise.resolve(true);
      }
      return new Promise((resolve) => {
        const granted = () => {
          signal.removeEventListener('abort', onAbort);
          resolve(true);
        };
        const onAbort = () => {
          waiters.splice(waiters.indexOf(granted), 1);
          resolve(false);
        };
        waiters.push(granted);
        signal.addEventListener('abort', onAbort, { once: true });
      });
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
