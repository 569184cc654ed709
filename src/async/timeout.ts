/** setTimeout fires at once for delays above 2^31 − 1 ms; a negative delay is no delay. */
export function timerDelay(ms: number): number {
  return Math.min(2 ** 31 - 1, Math.max(0, ms));
}

/**
 * Waits for `work` for at most `ms`. When the time runs out first, the wait ends with what `onTimeout` gives: its
 * value, or what it throws as the rejection. When `signal` aborts first, it rejects with the signal's reason. The
 * timer is cleared as soon as the wait ends, and never keeps the process alive: it bounds a wait, it is no work.
 */
export function withTimeout<T, U = T>(work: Promise<T>, ms: number, onTimeout: () => U, signal?: AbortSignal): Promise<T | U> {
  if (signal?.aborted) {
    // Nobody waits for the work any more: its later failure must not surface as an unhandled rejection.
    work.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T | U>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      done();
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      done();
      try {
        resolve(onTimeout());
      } catch (err) {
        reject(err);
      }
    }, timerDelay(ms));
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        done();
        resolve(value);
      },
      (err: unknown) => {
        done();
        reject(err);
      },
    );
  });
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. Like withTimeout's, its timer keeps no process alive. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  // A promise of its own each time: the reactions withTimeout adds go with it.
  return withTimeout(new Promise<never>(() => undefined), ms, () => undefined, signal);
}
