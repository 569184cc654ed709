/**
 * Waiters served in arrival order, for a limited resource (pages, upload slots, a client's requests in flight).
 * A waiter whose signal aborts leaves its place at once and rejects with the signal's reason; one that is woken
 * runs its `grant` synchronously, so the waker sees the resource taken before it wakes the next.
 */
export interface WaitQueue {
  readonly length: number;
  wait<T>(signal: AbortSignal, grant: () => T): Promise<T>;
  /** Wakes the longest waiter; false when nobody waits. */
  wakeNext(): boolean;
}

export function createWaitQueue(): WaitQueue {
  // A Set keeps insertion order and deletes a leaver in O(1).
  const waiters = new Set<() => void>();
  return {
    get length() {
      return waiters.size;
    },
    wait(signal, grant) {
      if (signal.aborted) return Promise.reject(signal.reason);
      return new Promise((resolve, reject) => {
        const wake = () => {
          signal.removeEventListener('abort', leave);
          try {
            resolve(grant());
          } catch (err) {
            reject(err);
          }
        };
        const leave = () => {
          waiters.delete(wake);
          reject(signal.reason);
        };
        waiters.add(wake);
        signal.addEventListener('abort', leave, { once: true });
      });
    },
    wakeNext() {
      const next = waiters.values().next();
      if (next.done) return false;
      waiters.delete(next.value);
      next.value();
      return true;
    },
  };
}
