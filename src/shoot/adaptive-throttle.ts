/**
 * Client-side adaptive throttling (Google SRE book, "Handling Overload"): over a sliding window, a request
 * is rejected locally with probability max(0, (requests − K·accepts) / (requests + 1)). While the fleet
 * accepts what we send, nothing is held back; once it sheds more than 1/K of it, our own retries stop
 * reaching it in proportion, and they come back as soon as it accepts again.
 *
 * Two departures from the book, both because a batch item held back asks again a moment later rather
 * than failing: "requests" counts the attempts sent (the book counts local rejections too, and with
 * items re-asking, the throttle would feed on its own rejections and starve a fleet that has recovered);
 * and an attempt is counted when its answer arrives, so a batch starting with many requests in flight is
 * not throttled before the fleet had a chance to answer. Below `minRequests` in the window nothing is held
 * back: one failure out of one request says little about a fleet.
 */
export interface AdaptiveThrottle {
  /** False: reject this attempt locally. */
  tryAcquire(): boolean;
  /** An attempt came back; `accepted` when the fleet handled it rather than shedding or failing it. */
  record(accepted: boolean): void;
  /** The current local rejection probability. */
  rejectProbability(): number;
  /** Whether the fleet accepted anything within the window. */
  fleetAccepting(): boolean;
}

export interface ThrottleOptions {
  /** The SRE book's multiplier: accept up to K requests per one the fleet accepts. */
  k?: number;
  windowMs?: number;
  minRequests?: number;
  now?: () => number;
  random?: () => number;
}

const bucketMs = 1000;

export function createAdaptiveThrottle({
  k = 2,
  windowMs = 120_000,
  minRequests = 10,
  now = Date.now,
  random = Math.random,
}: ThrottleOptions = {}): AdaptiveThrottle {
  // One bucket per second of the window keeps the memory bounded however long the batch runs.
  const buckets: { start: number; requests: number; accepts: number }[] = [];

  const current = () => {
    const t = now();
    while (buckets.length > 0 && buckets[0].start <= t - windowMs) buckets.shift();
    const start = t - (t % bucketMs);
    let last = buckets.at(-1);
    if (last?.start !== start) {
      last = { start, requests: 0, accepts: 0 };
      buckets.push(last);
    }
    return last;
  };

  const totals = () => {
    current();
    let requests = 0;
    let accepts = 0;
    for (const b of buckets) {
      requests += b.requests;
      accepts += b.accepts;
    }
    return { requests, accepts };
  };
  const rejectProbability = () => {
    const { requests, accepts } = totals();
    if (requests < minRequests) return 0;
    return Math.max(0, (requests - k * accepts) / (requests + 1));
  };

  return {
    tryAcquire: () => random() >= rejectProbability(),
    fleetAccepting: () => totals().accepts > 0,
    record(accepted) {
      const bucket = current();
      bucket.requests++;
      if (accepted) bucket.accepts++;
    },
    rejectProbability,
  };
}
