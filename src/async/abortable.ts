import { timerDelay } from './timeout.js';

/**
 * Waits for `work` unless `signal` aborts first, then rejects with the signal's reason. Whatever the work yields
 * after that is handed to `late` (a page or a permit that must go back), so leaving never leaks it.
 */
export function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined, late?: (value: T) => void): Promise<T> {
  if (!signal) return work;
  const giveBack = () => void work.then(late, () => undefined);
  if (signal.aborted) {
    giveBack();
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      giveBack();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

export interface DeadlineSignal {
  /** Aborts when the client leaves (with its reason) or at the deadline (with the error `atDeadline` makes), whichever is first. */
  signal: AbortSignal;
  /** Stops the deadline's timer: call when the work is done. */
  dispose(): void;
}

/** One signal for every wait of a request: its client going away, or its deadline passing. */
export function deadlineSignal(client: AbortSignal, deadlineAt: number, atDeadline: () => Error): DeadlineSignal {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(atDeadline()), timerDelay(deadlineAt - Date.now()));
  timer.unref();
  return {
    signal: AbortSignal.any([client, deadline.signal]),
    dispose: () => clearTimeout(timer),
  };
}
