import { withTimeout } from '../async/timeout.js';
import { createWaitQueue } from '../async/wait-queue.js';

export interface LookupLimit {
  run<T>(host: string, lookup: () => Promise<T>): Promise<T>;
  /** Fails every lookup still waiting and starts none: a closed page's names are nobody's business. */
  close(): void;
}

/**
 * At most `inFlight` lookups at once for one page, each bounded by `timeoutMs` counted from when it was asked
 * (waiting for a free slot included), so a page naming hundreds of hosts under a slow name server neither
 * floods it nor waits longer than one timeout per host for an answer.
 */
export function createLookupLimit(inFlight: number, timeoutMs: number): LookupLimit {
  let running = 0;
  const waiting = createWaitQueue();
  /** One controller per lookup not yet settled: closing aborts them, so a waiter leaves its place. */
  const pending = new Set<AbortController>();
  let closed = false;

  const failure = (code: string, message: string) => Object.assign(new Error(message), { code });

  /** A free slot, taken; or a place in line, left when the lookup's caller gives up or the page closes. */
  function slot(gaveUp: AbortSignal): Promise<void> {
    if (running < inFlight) {
      running++;
      return Promise.resolve();
    }
    return waiting.wait(gaveUp, () => void running++);
  }

  // The slot is held until the lookup itself ends (each is bounded by the resolver's own timeout), so no more than
  // `inFlight` are ever outstanding, even after their callers gave up.
  function holding<T>(lookup: () => Promise<T>): Promise<T> {
    return lookup().finally(() => {
      running--;
      waiting.wakeNext();
    });
  }

  return {
    run<T>(host: string, lookup: () => Promise<T>): Promise<T> {
      if (closed) return Promise.reject(failure('ECANCELLED', `ECANCELLED ${host}: the page is closed`));
      // A controller of its own rather than AbortSignal.any with a page-long signal: on Node 20 each such signal
      // stays referenced from the long-lived one, one entry per lookup for the page's lifetime.
      const gaveUp = new AbortController();
      pending.add(gaveUp);
      const answer = slot(gaveUp.signal).then(() => holding(lookup));
      return withTimeout(answer, timeoutMs, () => {
        const timedOut = failure('ETIMEOUT', `ETIMEOUT ${host}: no answer within ${timeoutMs} ms (SHOTFLEET_DNS_TIMEOUT_MS)`);
        gaveUp.abort(timedOut);
        throw timedOut;
      }).finally(() => pending.delete(gaveUp));
    },
    close() {
      closed = true;
      const cancelled = failure('ECANCELLED', 'ECANCELLED: the page is closed');
      for (const gaveUp of pending) gaveUp.abort(cancelled);
    },
  };
}
